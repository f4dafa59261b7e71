#!/usr/bin/env python3
"""Compiles every NVRTC kernel source of sdk/src/ops with NVRTC itself (no include paths, as boot does at run
time), on a machine without a GPU: the CUDA 13.0 wheels of scripts/cuda/setup.sh hold libnvrtc. nvcc is not
enough: it includes math.h and friends, so a source can compile there and fail in NVRTC (INFINITY did).

    python3 scripts/cuda/check-kernels.py        # exit 1 on the first source NVRTC refuses
"""

import ctypes
import glob
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CACHE = os.environ.get("BOOT_CUDA_CACHE", os.path.expanduser("~/.cache/boot-cuda"))


def sources():
    """(name, full source) of each Kernels::new(..) in sdk/src/ops: kernel_types.cu, then its include_str!s."""
    ops = os.path.join(ROOT, "sdk", "src", "ops")
    types = open(os.path.join(ops, "kernel_types.cu")).read()
    for rs in sorted(glob.glob(os.path.join(ops, "*.rs"))):
        text = open(rs).read()
        for m in re.finditer(r"Kernels::new\((.*?)\);", text, re.S):
            files = re.findall(r'include_str!\("([^"]+)"\)', m.group(1))
            yield os.path.basename(rs), types + "".join(open(os.path.join(ops, f)).read() for f in files)


def main():
    libdir = os.path.join(CACHE, "py", "nvidia", "cu13", "lib")
    ctypes.CDLL(os.path.join(libdir, "libnvrtc-builtins.so.13.0"), mode=ctypes.RTLD_GLOBAL)  # found by soname
    lib = ctypes.CDLL(os.path.join(libdir, "libnvrtc.so.13"))
    failed = 0
    for name, src in sources():
        prog = ctypes.c_void_p()
        assert lib.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), name.encode(), 0, None, None) == 0
        rc = lib.nvrtcCompileProgram(prog, 0, None)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        print(f"{name}: {'ok' if rc == 0 else 'FAILED'}")
        if rc != 0:
            print(log.value.decode())
            failed += 1
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
