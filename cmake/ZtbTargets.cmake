# ZtbTargets.cmake - helpers that give every test, fuzz target and benchmark
# the same shape, so modules register their own without editing shared files.
#
#   ztb_add_unit_test(NAME [LIBS ...] [SOURCES ...] [DEPENDS target...] [NO_TSAN])
#       tests/unit/NAME.c (+ SOURCES) linked with LIBS and cmocka; label unit.
#       DEPENDS: programs the test runs. NO_TSAN: not in the ThreadSanitizer
#       build (the code under test starts no threads: ztbctl's commands).
#       Unit tests and TSAN integration tests are what the target tsan-tests
#       builds (scripts/build.sh --tsan builds only that).
#   ztb_add_integration_test(NAME [TSAN] [ALONE] [LIBS ...] [SOURCES ...] [TIMEOUT s])
#       tests/integration/NAME.c + the harness; label integration. Runs the real
#       ztb-broker and a real redis-server. TSAN adds the label tsan: the test
#       drives the broker's or the SDK's threads, so the ThreadSanitizer build
#       runs it (that build runs labels unit and tsan only; scripts/test.sh).
#   ztb_add_fuzz_target(NAME [LIBS ...] [SECONDS n])
#       tests/fuzz/NAME.c with its seed corpus tests/fuzz/corpus/NAME/.
#       With clang: a libFuzzer binary run for SECONDS (default 5) in the suite.
#       Otherwise: the same entry point driven over the corpus (replay).
#       Label fuzz.
#   ztb_add_bench(AREA [LIBS ...] [SOURCES ...])
#       bench/bench_AREA.c -> build/bin/ztb-bench-AREA (not run by ctest).

set(ZTB_TESTS_DIR ${PROJECT_SOURCE_DIR}/tests)
set(ZTB_TEST_BIN_DIR ${CMAKE_BINARY_DIR}/tests)

# A test's own code (not the code it tests) unoptimised in the sanitizer
# builds: a third less to compile, and the libraries under test keep -O2.
# Not in the default build, where _FORTIFY_SOURCE needs the optimiser.
function(ztb_test_code target)
  if(ZTB_ANY_SANITIZER)
    target_compile_options(${target} PRIVATE -O0)
  endif()
endfunction()

function(ztb_add_unit_test name)
  cmake_parse_arguments(A "NO_TSAN" "TIMEOUT" "LIBS;SOURCES;DEPENDS" ${ARGN})
  if(NOT ZTB_BUILD_TESTS)
    return()
  endif()
  # NO_TSAN: the code under test has no threads of its own (ztbctl's
  # commands, run as a child process): the ThreadSanitizer build, which is
  # there to find races, neither builds nor runs it
  if(A_NO_TSAN AND ZTB_TSAN)
    return()
  endif()
  add_executable(${name} ${ZTB_TESTS_DIR}/unit/${name}.c ${A_SOURCES})
  ztb_test_code(${name})
  target_link_libraries(${name} PRIVATE ${A_LIBS} ztb_common PkgConfig::CMOCKA)
  target_include_directories(${name} PRIVATE ${ZTB_TESTS_DIR}/unit)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${ZTB_TEST_BIN_DIR})
  if(A_DEPENDS)
    add_dependencies(${name} ${A_DEPENDS}) # programs it runs
  endif()
  add_test(NAME unit/${name} COMMAND ${name})
  set_property(GLOBAL APPEND PROPERTY ZTB_TSAN_TARGETS ${name})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 120)
  endif()
  set_tests_properties(unit/${name} PROPERTIES LABELS unit TIMEOUT ${A_TIMEOUT}
    ENVIRONMENT "ZTB_SOURCE_DIR=${PROJECT_SOURCE_DIR};ZTB_BUILD_DIR=${CMAKE_BINARY_DIR}")
endfunction()

function(ztb_add_integration_test name)
  cmake_parse_arguments(A "TSAN;ALONE" "TIMEOUT" "LIBS;SOURCES" ${ARGN})
  if(NOT ZTB_BUILD_TESTS)
    return()
  endif()
  add_executable(${name} ${ZTB_TESTS_DIR}/integration/${name}.c ${A_SOURCES})
  ztb_test_code(${name})
  target_link_libraries(${name} PRIVATE ${A_LIBS} ztb_harness ztb_common PkgConfig::CMOCKA)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${ZTB_TEST_BIN_DIR})
  add_dependencies(${name} ztb-broker ztbctl)
  add_test(NAME integration/${name} COMMAND ${name})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  set(labels integration)
  if(A_TSAN)
    list(APPEND labels tsan)
    set_property(GLOBAL APPEND PROPERTY ZTB_TSAN_TARGETS ${name})
  endif()
  # COST: ctest -j starts the costliest first: the integration tests, which
  # run beside the unit and fuzz tests instead of alone at the end (in a
  # clean clone there is no cost data, and ctest would otherwise start them
  # last, in the order they are declared). Each takes one slot of the
  # resource "integration": with a resource spec file (scripts/test.sh
  # writes one per build) that many run at once; without one, ctest -j alone
  # bounds them. They share nothing but the machine: every Redis, broker
  # and port is the test's own.
  set_tests_properties(integration/${name} PROPERTIES LABELS "${labels}" COST 100
    TIMEOUT ${A_TIMEOUT} RESOURCE_GROUPS "integration:1"
    ENVIRONMENT "ZTB_SOURCE_DIR=${PROJECT_SOURCE_DIR};ZTB_BUILD_DIR=${CMAKE_BINARY_DIR}")
  # ALONE: nothing else runs beside it (ctest gives a test that asks for more
  # processors than -j all of them): failovers whose deadlines a loaded
  # machine would eat into
  if(A_ALONE)
    set_tests_properties(integration/${name} PROPERTIES PROCESSORS 64)
  endif()
endfunction()

function(ztb_add_fuzz_target name)
  cmake_parse_arguments(A "" "SECONDS" "LIBS;SOURCES" ${ARGN})
  if(NOT ZTB_BUILD_TESTS)
    return()
  endif()
  if(NOT A_SECONDS)
    set(A_SECONDS ${ZTB_FUZZ_SECONDS})
  endif()
  set(corpus ${ZTB_TESTS_DIR}/fuzz/corpus/${name})
  if(ZTB_FUZZ)
    add_executable(${name} ${ZTB_TESTS_DIR}/fuzz/${name}.c ${A_SOURCES})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${name} PRIVATE ${A_LIBS} ztb_common)
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${ZTB_TEST_BIN_DIR})
    # fuzz a scratch copy of the seed corpus so the source tree stays clean
    add_test(NAME fuzz/${name}
      COMMAND ${CMAKE_COMMAND} -E env ${PROJECT_SOURCE_DIR}/scripts/run-fuzz.sh
              $<TARGET_FILE:${name}> ${corpus} ${A_SECONDS})
  else()
    add_executable(${name} ${ZTB_TESTS_DIR}/fuzz/${name}.c
                   ${ZTB_TESTS_DIR}/fuzz/replay_main.c ${A_SOURCES})
    target_link_libraries(${name} PRIVATE ${A_LIBS} ztb_common)
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${ZTB_TEST_BIN_DIR})
    add_test(NAME fuzz/${name} COMMAND ${name} ${corpus})
  endif()
  set_tests_properties(fuzz/${name} PROPERTIES LABELS fuzz TIMEOUT 300)
endfunction()

function(ztb_add_bench area)
  cmake_parse_arguments(A "" "" "LIBS;SOURCES" ${ARGN})
  set(all)
  if(ZTB_ANY_SANITIZER)
    set(all EXCLUDE_FROM_ALL) # figures come from the default build
  endif()
  add_executable(ztb-bench-${area} ${all} ${PROJECT_SOURCE_DIR}/bench/bench_${area}.c ${A_SOURCES})
  target_link_libraries(ztb-bench-${area} PRIVATE ${A_LIBS} ztb_bench_util ztb_common)
endfunction()
