# zapd_module(NAME <name> SOURCES ... DEPS ...)
# One static library per module: zapd_<name>, aliased zapd::<name>. Public headers live in
# include/zapd/<name>/; DEPS are the only modules and third-party targets it may use.
#
# The module graph is enforced at compile time, not only at link time: each module's
# PUBLIC include directory is a directory of its own in the build tree holding one link,
# zapd/<name> -> include/zapd/<name>. So a module (or a test) sees exactly its own headers
# and those of the modules it links (PUBLIC propagation), and including any other module's
# header fails to compile, header-only use included.
function(zapd_module)
  cmake_parse_arguments(M "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_library(zapd_${M_NAME} STATIC ${M_SOURCES})
  add_library(zapd::${M_NAME} ALIAS zapd_${M_NAME})
  set(public_root ${PROJECT_BINARY_DIR}/module-include/${M_NAME})
  file(MAKE_DIRECTORY ${public_root}/zapd)
  if(EXISTS ${PROJECT_SOURCE_DIR}/include/zapd/${M_NAME} AND NOT EXISTS ${public_root}/zapd/${M_NAME})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/include/zapd/${M_NAME} ${public_root}/zapd/${M_NAME} SYMBOLIC)
  endif()
  target_include_directories(zapd_${M_NAME} PUBLIC ${public_root} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(zapd_${M_NAME} PUBLIC ${M_DEPS})
endfunction()
