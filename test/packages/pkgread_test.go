//go:build linux

package packages

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
)

// A package's contents as the test compares them, read with the standard
// library alone (no dpkg-deb, rpm or rpm2cpio on the host needed).
type pkgContents struct {
	arch  string               // the .deb's Architecture field, the .rpm's ARCH tag
	files map[string]*pkgEntry // by absolute path, directories too
}

type pkgEntry struct {
	mode   os.FileMode
	sha256 [32]byte
	data   []byte // regular files under /usr/bin only (the binaries)
}

func keepData(name string) bool { return path.Dir(name) == "/usr/bin" }

// readDeb: the ar archive's control.tar.gz (for Architecture) and
// data.tar.gz. nfpm writes gzip unless told otherwise (deb.compression).
func readDeb(file string) (*pkgContents, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != "!<arch>\n" {
		return nil, fmt.Errorf("%s: not an ar archive", file)
	}
	c := &pkgContents{files: map[string]*pkgEntry{}}
	var sawControl, sawData bool
	for {
		hdr := make([]byte, 60)
		if _, err := io.ReadFull(r, hdr); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: ar header: %v", file, err)
		}
		name := strings.TrimSuffix(strings.TrimSpace(string(hdr[:16])), "/")
		size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: ar member %q: size %q", file, name, hdr[48:58])
		}
		member := io.LimitReader(r, size)
		switch {
		case name == "control.tar.gz":
			sawControl = true
			err = readTarGz(member, func(h *tar.Header, body io.Reader) error {
				if path.Clean(h.Name) != "control" {
					return nil
				}
				b, err := io.ReadAll(body)
				for _, l := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(l, "Architecture:"); ok {
						c.arch = strings.TrimSpace(v)
					}
				}
				return err
			})
		case name == "data.tar.gz":
			sawData = true
			err = readTarGz(member, func(h *tar.Header, body io.Reader) error {
				return c.add(path.Clean("/"+h.Name), h.FileInfo().Mode(), h.Typeflag == tar.TypeReg, body)
			})
		case strings.HasPrefix(name, "data.tar") || strings.HasPrefix(name, "control.tar"):
			return nil, fmt.Errorf("%s: member %s: the test reads gzip (nfpm's default); read this compression too", file, name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v", file, name, err)
		}
		if _, err := io.Copy(io.Discard, member); err != nil {
			return nil, err
		}
		if size%2 == 1 { // members are 2-byte aligned
			if _, err := r.Discard(1); err != nil {
				return nil, err
			}
		}
	}
	if !sawControl || !sawData {
		return nil, fmt.Errorf("%s: control.tar.gz %v, data.tar.gz %v: want both", file, sawControl, sawData)
	}
	return c, nil
}

func readTarGz(r io.Reader, each func(*tar.Header, io.Reader) error) error {
	z, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	tr := tar.NewReader(z)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := each(h, tr); err != nil {
			return err
		}
	}
}

func (c *pkgContents) add(name string, mode os.FileMode, regular bool, body io.Reader) error {
	if name == "/" {
		return nil
	}
	if _, dup := c.files[name]; dup {
		return fmt.Errorf("%s twice in the package", name)
	}
	e := &pkgEntry{mode: mode}
	if regular {
		b, err := io.ReadAll(body)
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		e.sha256 = sha256.Sum256(b)
		if keepData(name) {
			e.data = b
		}
	}
	c.files[name] = e
	return nil
}

// RPM header tags (rpmtag.h) the test reads.
const (
	rpmTagArch              = 1022
	rpmTagPayloadFormat     = 1124
	rpmTagPayloadCompressor = 1125
)

// readRPM: the lead, the signature header (padded to 8 bytes), the main
// header (ARCH, the payload's format and compressor) and the payload, a
// gzip-compressed cpio (newc) archive.
func readRPM(file string) (*pkgContents, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	lead := make([]byte, 96)
	if _, err := io.ReadFull(r, lead); err != nil || !bytes.Equal(lead[:4], []byte{0xed, 0xab, 0xee, 0xdb}) {
		return nil, fmt.Errorf("%s: no RPM lead", file)
	}
	sigLen, _, err := readRPMHeader(r)
	if err != nil {
		return nil, fmt.Errorf("%s: signature header: %v", file, err)
	}
	if pad := (8 - sigLen%8) % 8; pad > 0 {
		if _, err := r.Discard(pad); err != nil {
			return nil, err
		}
	}
	_, tags, err := readRPMHeader(r)
	if err != nil {
		return nil, fmt.Errorf("%s: header: %v", file, err)
	}
	if f, z := tags[rpmTagPayloadFormat], tags[rpmTagPayloadCompressor]; f != "cpio" || z != "gzip" {
		return nil, fmt.Errorf("%s: payload %q compressed with %q: the test reads gzip-compressed cpio (nfpm's default)", file, f, z)
	}
	c := &pkgContents{arch: tags[rpmTagArch], files: map[string]*pkgEntry{}}
	z, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%s: payload: %v", file, err)
	}
	if err := readCpio(z, c); err != nil {
		return nil, fmt.Errorf("%s: payload: %v", file, err)
	}
	return c, nil
}

// readRPMHeader reads one header structure and returns its length and its
// STRING tags (the only type the test needs).
func readRPMHeader(r io.Reader) (int, map[int]string, error) {
	var h struct {
		Magic    [4]byte
		Reserved [4]byte
		Count    uint32
		Size     uint32
	}
	if err := binary.Read(r, binary.BigEndian, &h); err != nil {
		return 0, nil, err
	}
	if !bytes.Equal(h.Magic[:], []byte{0x8e, 0xad, 0xe8, 0x01}) {
		return 0, nil, errors.New("bad header magic")
	}
	if h.Count > 1<<16 || h.Size > 1<<28 {
		return 0, nil, fmt.Errorf("implausible header: %d entries, %d bytes", h.Count, h.Size)
	}
	index := make([]struct{ Tag, Type, Offset, Count uint32 }, h.Count)
	if err := binary.Read(r, binary.BigEndian, index); err != nil {
		return 0, nil, err
	}
	store := make([]byte, h.Size)
	if _, err := io.ReadFull(r, store); err != nil {
		return 0, nil, err
	}
	tags := map[int]string{}
	for _, e := range index {
		if e.Type != 6 || e.Offset >= h.Size { // RPM_STRING_TYPE
			continue
		}
		s, _, _ := bytes.Cut(store[e.Offset:], []byte{0})
		tags[int(e.Tag)] = string(s)
	}
	return 16 + 16*int(h.Count) + int(h.Size), tags, nil
}

// readCpio reads a "newc" (070701) cpio archive: a 110-byte header of hex
// fields, the name and the data, each padded to 4 bytes.
func readCpio(r io.Reader, c *pkgContents) error {
	br := bufio.NewReader(r)
	for {
		hdr := make([]byte, 110)
		if _, err := io.ReadFull(br, hdr); err != nil {
			return fmt.Errorf("cpio header: %v", err)
		}
		if string(hdr[:6]) != "070701" {
			return fmt.Errorf("cpio magic %q, want 070701 (newc)", hdr[:6])
		}
		field := func(i int) (int64, error) { return strconv.ParseInt(string(hdr[6+8*i:14+8*i]), 16, 64) }
		mode, err1 := field(1)
		size, err2 := field(6)
		nameSize, err3 := field(11)
		if err := errors.Join(err1, err2, err3); err != nil {
			return fmt.Errorf("cpio header %q: %v", hdr, err)
		}
		name := make([]byte, nameSize+(4-(110+nameSize)%4)%4)
		if _, err := io.ReadFull(br, name); err != nil {
			return err
		}
		n := string(bytes.TrimRight(name[:nameSize], "\x00"))
		if n == "TRAILER!!!" {
			return nil
		}
		body := io.LimitReader(br, size)
		fm := os.FileMode(mode & 0o777)
		switch mode & 0o170000 {
		case 0o040000:
			fm |= os.ModeDir
		case 0o120000:
			fm |= os.ModeSymlink
		}
		if err := c.add(path.Clean("/"+n), fm, mode&0o170000 == 0o100000, body); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return err
		}
		if _, err := br.Discard(int((4 - size%4) % 4)); err != nil {
			return err
		}
	}
}
