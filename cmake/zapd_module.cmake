# zapd_module(NAME <name> SOURCES ... DEPS ...)
# One static library per module: zapd_<name>, aliased zapd::<name>. Public headers live in
# include/zapd/<name>/; DEPS are the only modules and third-party targets it may use.
function(zapd_module)
  cmake_parse_arguments(M "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_library(zapd_${M_NAME} STATIC ${M_SOURCES})
  add_library(zapd::${M_NAME} ALIAS zapd_${M_NAME})
  target_include_directories(zapd_${M_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/include
                                            PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(zapd_${M_NAME} PUBLIC ${M_DEPS})
endfunction()
