#!/usr/bin/env python3
"""Fails if a .wasm file imports anything from the `env` module.

An `env` import means native code (C, or a Rust crate assuming a platform) leaked into the
browser build: the module would not even instantiate in a page. Reads the import section of
the binary directly (no tools needed). Usage: wasm_imports.py FILE.wasm [...]
"""
import sys


def leb(data, i):
    result = shift = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, i


def imports(path):
    data = open(path, "rb").read()
    if data[:4] != b"\0asm":
        raise SystemExit(f"{path}: not a wasm module")
    i, found = 8, []
    while i < len(data):
        section, i = data[i], i + 1
        size, i = leb(data, i)
        end = i + size
        if section == 2:
            count, j = leb(data, i)
            for _ in range(count):
                n, j = leb(data, j)
                module = data[j:j + n].decode()
                j += n
                n, j = leb(data, j)
                name = data[j:j + n].decode()
                j += n
                kind, j = data[j], j + 1
                if kind == 0:  # function: type index
                    _, j = leb(data, j)
                elif kind == 1:  # table: reftype + limits
                    j += 1
                    flags, j = leb(data, j)
                    _, j = leb(data, j)
                    if flags & 1:
                        _, j = leb(data, j)
                elif kind == 2:  # memory: limits
                    flags, j = leb(data, j)
                    _, j = leb(data, j)
                    if flags & 1:
                        _, j = leb(data, j)
                elif kind == 3:  # global: valtype + mutability
                    j += 2
                else:
                    _, j = leb(data, j)
                found.append((module, name))
        i = end
    return found


def main():
    bad = False
    for path in sys.argv[1:]:
        found = imports(path)
        modules = sorted({m for m, _ in found})
        env = [n for m, n in found if m == "env"]
        print(f"{path}: {len(found)} imports from {', '.join(modules) or 'nothing'}")
        if env:
            bad = True
            print(f"  imports from `env` (native code in the browser build): {', '.join(env[:20])}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
