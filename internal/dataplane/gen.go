package dataplane

//go:generate go tool bpf2go -tags linux -target bpfel -type flow -type svc_key -type svc_ref -type svc_meta -type svc_live_val -type real -type if_mac_slot -type conn -type nat_back -type persist_key -type persist_val -type frag_key -type frag_val -type config -type svc_stats -type real_stats balancer ../../bpf/balancer.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu
