/// The upstream version `--version` prints; `scripts/build-deb` names the package after it
/// (`<this>-<Debian revision>`). Bump it with each release.
let crocanteVersion = "0.13.0"
