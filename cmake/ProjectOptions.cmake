# Warnings and sanitizers are INTERFACE targets that every project target links PRIVATE. -Wnull-dereference is
# left out: at -O2 it reports paths inside nlohmann/json's iterators that cannot happen; so is GCC 12's
# -Wmaybe-uninitialized, which misfires on std::variant and std::optional moves at -O2.
add_library(poolguard_warnings INTERFACE)
target_compile_options(poolguard_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wimplicit-fallthrough
  $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>
  $<$<BOOL:${POOLGUARD_WERROR}>:-Werror>)

add_library(poolguard_sanitizers INTERFACE)
if(POOLGUARD_SANITIZE)
  string(REPLACE ";" "," _san "${POOLGUARD_SANITIZE}")
  target_compile_options(poolguard_sanitizers INTERFACE -fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(poolguard_sanitizers INTERFACE -fsanitize=${_san})
  if("undefined" IN_LIST POOLGUARD_SANITIZE)
    # cpprestsdk's stream buffers trip UBSan's vptr check on correctly typed objects (a false positive).
    target_compile_options(poolguard_sanitizers INTERFACE -fno-sanitize=vptr)
    target_link_options(poolguard_sanitizers INTERFACE -fno-sanitize=vptr)
  endif()
endif()

add_library(poolguard_options INTERFACE)
target_link_libraries(poolguard_options INTERFACE poolguard_warnings poolguard_sanitizers)

# poolguard_module(NAME SOURCES... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# One static library per module; headers are included as "<module>/<file>.h" from operator/.
function(poolguard_module name)
  cmake_parse_arguments(M "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(poolguard_${name} STATIC ${M_SOURCES})
  add_library(poolguard::${name} ALIAS poolguard_${name})
  target_include_directories(poolguard_${name} PUBLIC ${PROJECT_SOURCE_DIR}/operator)
  target_link_libraries(poolguard_${name} PUBLIC ${M_PUBLIC_DEPS} PRIVATE poolguard_options ${M_PRIVATE_DEPS})
endfunction()

# poolguard_test(NAME LABEL SOURCES... [DEPS ...]) registers a GoogleTest binary with CTest under LABEL.
function(poolguard_test name label)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gmock poolguard_options)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${name} COMMAND ${name} --gtest_color=no)
  set_tests_properties(${name} PROPERTIES LABELS "${label}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "POOLGUARD_SOURCE_DIR=${PROJECT_SOURCE_DIR};POOLGUARD_BINARY=${CMAKE_BINARY_DIR}/bin/poolguard")
endfunction()
