package bpf

// One object per architecture (execsnoop_x86_bpfel.{go,o} for amd64,
// execsnoop_arm64_bpfel.{go,o} for arm64), from one CO-RE source that
// includes bpf/headers/<arch>/vmlinux.h by __TARGET_ARCH_<arch>.
//go:generate go tool bpf2go -cc clang-16 -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type event_header -type exec_event -type exit_event -type fork_event -type event_kind -type exec_syscall -type exec_flags -type exec_file_flags -type path_limits -type exec_privileges -type stat_index -type rusage_flags execsnoop execsnoop.bpf.c
