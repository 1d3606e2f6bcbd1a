#!/bin/sh
# A CI-like job: build, test, package, and a failing lint check.
set -e
work=$(mktemp -d)
cd "$work"
printf '#include <stdio.h>\nint main(void){volatile long s=0;for(long i=0;i<200000000;i++)s+=i;printf("%%ld\\n",s);return 0;}\n' > sum.c
clang-16 -O1 -o sum sum.c
./sum > out.txt
sha256sum out.txt > out.sha256
seq 1 1500000 | sort -rn | head -n 1 > max.txt
tar czf artifact.tgz sum out.txt max.txt
sh -c 'grep -q TODO sum.c' || echo "lint: no TODO found"
cd /; rm -rf "$work"
