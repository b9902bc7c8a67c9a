# Generates a C++ source holding every file of the built web UI (web/dist) as bytes, with a
# gzip twin for compressible files, a content type and a strong ETag. Inputs: DIST, OUTPUT.
# Run at build time (add_custom_command in src/ui), so editing web/dist rebuilds only this.
cmake_minimum_required(VERSION 3.25)
find_program(GZIP gzip REQUIRED)
file(GLOB_RECURSE files RELATIVE "${DIST}" "${DIST}/*")
list(SORT files)
if(NOT "index.html" IN_LIST files)
  message(FATAL_ERROR "${DIST}/index.html is missing: build the UI (cd web && npm ci && npm run build) or configure with -DZAPD_WITH_UI=OFF")
endif()

function(zapd_bytes path var)
  file(READ "${path}" hex HEX)
  string(LENGTH "${hex}" n)
  if(n EQUAL 0)
    set(${var} "0" PARENT_SCOPE)
    return()
  endif()
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  # Break the line every 32 bytes so the generated file stays editor- and diff-friendly.
  string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){32})" "\\1\n" hex "${hex}")
  set(${var} "${hex}" PARENT_SCOPE)
endfunction()

set(arrays "")
set(entries "")
set(i 0)
foreach(rel IN LISTS files)
  set(path "${DIST}/${rel}")
  string(REGEX MATCH "\\.[A-Za-z0-9]+$" ext "${rel}")
  string(TOLOWER "${ext}" ext)
  set(compress OFF)
  if(ext STREQUAL ".html")
    set(type "text/html; charset=utf-8")
    set(compress ON)
  elseif(ext STREQUAL ".js" OR ext STREQUAL ".mjs")
    set(type "text/javascript; charset=utf-8")
    set(compress ON)
  elseif(ext STREQUAL ".css")
    set(type "text/css; charset=utf-8")
    set(compress ON)
  elseif(ext STREQUAL ".svg")
    set(type "image/svg+xml")
    set(compress ON)
  elseif(ext STREQUAL ".json" OR ext STREQUAL ".map")
    set(type "application/json")
    set(compress ON)
  elseif(ext STREQUAL ".webmanifest")
    set(type "application/manifest+json")
    set(compress ON)
  elseif(ext STREQUAL ".txt")
    set(type "text/plain; charset=utf-8")
    set(compress ON)
  elseif(ext STREQUAL ".png")
    set(type "image/png")
  elseif(ext STREQUAL ".ico")
    set(type "image/x-icon")
  elseif(ext STREQUAL ".woff2")
    set(type "font/woff2")
  else()
    set(type "application/octet-stream")
  endif()

  file(SIZE "${path}" size)
  file(SHA256 "${path}" sha)
  string(SUBSTRING "${sha}" 0 20 etag)
  zapd_bytes("${path}" bytes)
  string(APPEND arrays "const unsigned char f${i}[] = {\n${bytes}};\n")
  set(gz "{}")
  if(compress AND size GREATER 256)
    set(gzpath "${OUTPUT}.${i}.gz")
    execute_process(COMMAND "${GZIP}" -9 -n -c "${path}" OUTPUT_FILE "${gzpath}" RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "gzip failed on ${path}")
    endif()
    file(SIZE "${gzpath}" gzsize)
    math(EXPR limit "${size} * 9 / 10")
    if(gzsize LESS limit)
      zapd_bytes("${gzpath}" gzbytes)
      string(APPEND arrays "const unsigned char f${i}gz[] = {\n${gzbytes}};\n")
      set(gz "{reinterpret_cast<const char*>(f${i}gz), ${gzsize}}")
    endif()
    file(REMOVE "${gzpath}")
  endif()
  string(APPEND entries
         "      {\"/${rel}\", \"${type}\", {reinterpret_cast<const char*>(f${i}), ${size}}, ${gz}, \"${etag}\"},\n")
  math(EXPR i "${i} + 1")
endforeach()

file(WRITE "${OUTPUT}.tmp"
"// Generated from web/dist by cmake/embed_ui.cmake. Do not edit.
#include \"zapd/ui/assets.hpp\"

namespace zapd::ui {
namespace {

${arrays}
}  // namespace

const std::vector<asset>& embedded() {
  static const std::vector<asset> all = {
${entries}  };
  return all;
}

}  // namespace zapd::ui
")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUTPUT}.tmp" "${OUTPUT}")
file(REMOVE "${OUTPUT}.tmp")
