"""The native runtime: the whole stack as plain processes on 127.0.0.1, from the files the
containers use (`make native-up`, `make native-down`; python -m native up|down)."""
