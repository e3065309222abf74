# fuzz.cmake — the libFuzzer build (FENBO_FUZZ=ON): every library of the tree
# is compiled with coverage instrumentation and ASan + UBSan, so that the fuzz
# targets of tools/fuzz/ see, and check, the very code the daemons run.
#
# A tree of its own, with clang:
#   CC=clang cmake -S . -B build-fuzz -DFENBO_FUZZ=ON -DFENBO_TESTS=OFF
#   cmake --build build-fuzz --target fuzz_targets
#   (cd build-fuzz && ctest -L fuzz)
# or simply scripts/fuzz (tools/fuzz/README.md).
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "FENBO_FUZZ needs clang (libFuzzer): configure with CC=clang")
endif()

# -O1 -g whatever the build type: fast enough to fuzz, and the stacks of a
# crash still name the lines. No NDEBUG: assertions are checks too.
add_compile_options(-O1 -g -fno-omit-frame-pointer
    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined)
add_link_options(-fsanitize=address,undefined)

enable_testing()
add_subdirectory(tools/fuzz)
