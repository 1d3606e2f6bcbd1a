#!/bin/sh
# rpmlint RPM CONFIG, sandboxed. rpmlint unpacks a package with
# `rpm2cpio | cpio -id`, and nfpm's payload holds absolute paths, so as root
# cpio would write the package's files into the host's /. Here rpmlint runs
# chrooted in an overlay of / whose writes land on a tmpfs, in a private
# mount namespace: everything it writes and mounts goes when it exits. A cpio
# there unpacks relative to rpmlint's directory, so the files get checked.
set -eu
rpm=$(realpath "$1")
conf=$(realpath "$2")
d=$(mktemp -d)
trap 'rmdir "$d"' EXIT
unshare --mount --propagation private sh -eu -c '
	d=$1 rpm=$2 conf=$3
	mount -t tmpfs rpmlint-sandbox "$d"
	mkdir "$d/upper" "$d/work" "$d/root"
	mount -t overlay rpmlint-sandbox -o "lowerdir=/,upperdir=$d/upper,workdir=$d/work" "$d/root"
	mount -t proc proc "$d/root/proc"
	mount --rbind /dev "$d/root/dev"
	mkdir -p "$d/root/lint"
	# ...and unpack relative to the directory rpmlint reads for them.
	printf "#!/bin/sh\nexec /usr/bin/cpio --no-absolute-filenames \"\$@\"\n" >"$d/root/usr/local/bin/cpio"
	chmod 755 "$d/root/usr/local/bin/cpio"
	cp "$rpm" "$conf" "$d/root/lint/"
	cd "$d/root/lint"
	chroot "$d/root" sh -c "cd /lint && rpmlint -c /lint/$(basename "$conf") /lint/$(basename "$rpm")"
' sandbox "$d" "$rpm" "$conf"
