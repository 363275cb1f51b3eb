# vigil_cc_library(NAME SRCS ... DEPS ...): one CMake library per component folder,
# with the project's warning flags set once here (after Redpanda's v_cc_library).
function(vigil_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror
                                           -Wno-error=deprecated-declarations)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # The sanitizer builds use clang (it compiles them about 3x faster than GCC). librdkafka's
    # rd_kafka_producev() argument macros type-check with GNU statement expressions.
    target_compile_options(${target} PRIVATE -Wno-gnu-statement-expression)
  endif()
endfunction()

function(vigil_cc_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SRCS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  vigil_set_warnings(${name})
endfunction()

# vigil_cc_test(NAME SRCS ... DEPS ... LABELS ...): a GoogleTest binary registered with CTest.
function(vigil_cc_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE VIGIL_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  vigil_set_warnings(${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  if("concurrency" IN_LIST ARG_LABELS)
    add_dependencies(vigil_concurrency_tests ${name})
  endif()
  if("unit" IN_LIST ARG_LABELS OR "integration" IN_LIST ARG_LABELS)
    add_dependencies(vigil_sanitized_tests ${name})
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "VIGIL_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
