# Generates a C++ source holding every schema/NNNN_name.sql as a string, ordered by number.
# Inputs: SCHEMA_DIR, OUTPUT.
file(GLOB files "${SCHEMA_DIR}/*.sql")
list(SORT files)
set(body "")
foreach(f IN LISTS files)
  get_filename_component(base "${f}" NAME_WE)
  if(NOT base MATCHES "^([0-9]+)_([a-z0-9_]+)$")
    message(FATAL_ERROR "schema file ${f}: name must be NNNN_name.sql")
  endif()
  math(EXPR version "${CMAKE_MATCH_1}")
  set(name "${CMAKE_MATCH_2}")
  file(READ "${f}" sql)
  string(APPEND body "      {${version}, \"${name}\", R\"zapd_sql(${sql})zapd_sql\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp"
"// Generated from schema/*.sql by cmake/embed_migrations.cmake. Do not edit.
#include \"zapd/store/migrations.hpp\"

namespace zapd::store {

const std::vector<migration>& embedded_migrations() {
  static const std::vector<migration> all = {
${body}  };
  return all;
}

}  // namespace zapd::store
")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUTPUT}.tmp" "${OUTPUT}")
