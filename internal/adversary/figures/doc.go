// Package figures holds the flood figures of docs/security.md (issue 12):
// an honest 64 MiB download from a real `shoal node` process, timed with
// and without each flood of package adversary running against it, in
// alternated pairs, with the victim's peak resident memory read from
// /proc. It has only a test: SHOAL_ATTACK_FIGURES=1 go test
// ./internal/adversary/figures -run TestFloodFigures -v -timeout 60m.
package figures
