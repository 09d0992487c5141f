package main

//go:generate go tool bpf2go -tags linux -target bpfel -type gen_frame -type fwd bench ../../bpf/bench.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu
