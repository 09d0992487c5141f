package decap

//go:generate go tool bpf2go -tags linux -target bpfel -type decap_vip decap ../../bpf/decap.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu
