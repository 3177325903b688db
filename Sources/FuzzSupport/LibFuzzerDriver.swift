#if FUZZING
/// libFuzzer's driver (`LLVMFuzzerRunDriver`, the function its own `main` calls).
@_silgen_name("LLVMFuzzerRunDriver")
private func runLibFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Hands over to libFuzzer's driver exactly as libFuzzer's `main` does. Each fuzz target calls
/// it from its own `<Target>_main`: SwiftPM links every executable with
/// `--defsym main=<Target>_main` (so tests can link executables), and with `-parse-as-library`
/// and no `@main` that symbol would be missing.
public func runLibFuzzer(
    argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt {
    var argc = argc
    var argv = argv
    return runLibFuzzerDriver(&argc, &argv, testOneInput)
}
#endif
