module github.com/pkginitrd/pkginitrd

go 1.26.8

require (
	github.com/CycloneDX/cyclonedx-go v0.12.0
	github.com/klauspost/compress v1.20.3
	github.com/pelletier/go-toml/v2 v2.4.3
	github.com/pierrec/lz4/v4 v4.1.33
	github.com/spdx/tools-golang v0.5.7
	github.com/ulikunitz/xz v0.5.17
	golang.org/x/sys v0.49.0
	golang.org/x/term v0.47.0
)

require github.com/anchore/go-struct-converter v0.1.0 // indirect
