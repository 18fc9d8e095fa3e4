package cpio_test

import (
	"bytes"
	"fmt"
	"io"
	"log"

	"github.com/pkginitrd/pkginitrd/image/cpio"
)

func Example() {
	var buf bytes.Buffer
	w := cpio.NewWriter(&buf)
	for _, h := range []cpio.Header{
		{Name: "dev", Mode: cpio.TypeDir | 0o755, Nlink: 2, Ino: 1},
		{Name: "dev/console", Mode: cpio.TypeChar | 0o600, Nlink: 1, Ino: 2, RdevMajor: 5, RdevMinor: 1},
		{Name: "init", Mode: cpio.TypeReg | 0o755, Nlink: 1, Ino: 3, Size: 10},
		{Name: "sbin", Mode: cpio.TypeSymlink | 0o777, Nlink: 1, Ino: 4, Linkname: "usr/sbin"},
	} {
		if err := w.WriteHeader(&h); err != nil {
			log.Fatal(err)
		}
		if h.Name == "init" {
			io.WriteString(w, "#!/bin/sh\n")
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	r := cpio.NewReader(&buf)
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%v %s %d:%d %q\n", h.FileMode(), h.Name, h.RdevMajor, h.RdevMinor, h.Linkname)
	}
	fmt.Println("archive bytes:", r.Offset())
	// Output:
	// drwxr-xr-x dev 0:0 ""
	// Dcrw------- dev/console 5:1 ""
	// -rwxr-xr-x init 0:0 ""
	// Lrwxrwxrwx sbin 0:0 "usr/sbin"
	// archive bytes: 616
}
