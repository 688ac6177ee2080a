//go:build !race

package discovery

const timeScale = 1
