fn main() {
    println!("cargo:rustc-link-arg-bin=berth-shim=-no-pie");
}
