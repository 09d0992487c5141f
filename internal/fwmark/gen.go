package fwmark

//go:generate go tool bpf2go -tags linux -target bpfel fwmark ../../bpf/fwmark.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu
