# dashboard_embed.cmake — turns workers/dashboard.html into a C array, so the
# worker carries its dashboard page inside the binary.
#
#   cmake -DIN=dashboard.html -DOUT=dashboard_html.c -P dashboard_embed.cmake
#
# Run by a custom command of workers/CMakeLists.txt whenever the page changes.
if(NOT IN OR NOT OUT)
    message(FATAL_ERROR "usage: cmake -DIN=page.html -DOUT=page.c -P dashboard_embed.cmake")
endif()
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
# Two hex digits per byte → "0xNN," with a line break every 16 bytes.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUT}.tmp"
    "/* Generated from dashboard.html by dashboard_embed.cmake: do not edit. */\n"
    "#include <stddef.h>\n\n"
    "extern const unsigned char fb_dashboard_html[];\n"
    "extern const size_t fb_dashboard_html_len;\n\n"
    "const unsigned char fb_dashboard_html[] = {\n    ${bytes}\n};\n"
    "const size_t fb_dashboard_html_len = ${len};\n")
# configure_file leaves an unchanged output alone, so a rebuild without a
# changed page compiles nothing.
configure_file("${OUT}.tmp" "${OUT}" COPYONLY)
file(REMOVE "${OUT}.tmp")
