package bpf

//go:generate go tool bpf2go -cc clang-16 -cflags "-O2 -g -Wall -Werror" -target amd64 -type event_header -type exec_event -type exit_event -type fork_event -type event_kind -type exec_syscall -type exec_flags -type exec_privileges -type stat_index -type rusage_flags execsnoop execsnoop.bpf.c -- -I/usr/include/x86_64-linux-gnu
