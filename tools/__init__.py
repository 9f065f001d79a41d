"""Developer tools of pip-fastdeps: benchmark harness, wheel survey, test servers."""
