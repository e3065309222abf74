# fenbo-load — the benchmark load generator (tools/fenbo-load.c).
#
# Included from tools/CMakeLists.txt. It needs libcurl (Debian:
# libcurl4-openssl-dev) on top of libfenbo's own dependencies; libcurl is found
# here rather than in cmake/deps.cmake because nothing else links it.
find_package(PkgConfig REQUIRED)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)

add_executable(fenbo-load ${CMAKE_CURRENT_LIST_DIR}/fenbo-load.c
    ${CMAKE_CURRENT_LIST_DIR}/load_options.c ${CMAKE_CURRENT_LIST_DIR}/load_report.c)
target_link_libraries(fenbo-load PRIVATE fenbo PkgConfig::CURL)
