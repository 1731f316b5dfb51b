# cmake -DDIR=<corpus folder> -P check_corpus.cmake: fails unless DIR holds at least one file.
file(GLOB _seeds "${DIR}/*")
if(NOT _seeds)
  message(FATAL_ERROR "${DIR}: no seed inputs (expected at least one file)")
endif()
