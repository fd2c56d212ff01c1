/// `diffuse --version`.
enum DiffuseVersion {
    static let current = "0.1.0"
}
