package procattr

// RegistryVersion is the semantic-conventions release whose attribute
// registry the names here follow: TestNamesFollowTheRegistry checks every
// key the mapping emits against testdata/semconv-registry-<version>.txt,
// which semconvgen writes from that release's model/ YAML. To move to a
// newer release, fetch github.com/open-telemetry/semantic-conventions,
// change the version here and in the line below, and run
// SEMCONV_GIT=<its git dir> go generate ./internal/procattr/.
const RegistryVersion = "v1.44.0"

//go:generate go run ./semconvgen -git $SEMCONV_GIT -tag v1.44.0 -o testdata/semconv-registry-v1.44.0.txt
