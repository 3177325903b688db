// Only without libFuzzer: a fuzzer build (FUZZING) keeps Foundation out of the binary.
#if !FUZZING
import Foundation

/// What a fuzz target does when built without libFuzzer: replays seed corpora through its fuzz
/// function, so the seeds (and every crash ever found) run as a regression test in CI.
public enum CorpusReplay {
    /// Runs `body` on every file in `paths` (directories are read one level deep, in name order).
    /// Exits 64 with no path and 66 for a path that does not exist. Returns the number of inputs
    /// run and how many of them `body` counted.
    public static func run(tool: String, paths: [String], _ body: ([UInt8]) -> Bool) -> (inputs: Int, counted: Int) {
        guard !paths.isEmpty else {
            FileHandle.standardError.write(Data("usage: \(tool) CORPUS_DIR_OR_FILE...\n".utf8))
            exit(64)
        }
        var inputs = 0
        var counted = 0
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("\(tool): \(path) does not exist\n".utf8))
                exit(66)
            }
            let files =
                isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 } : [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                if body(Array(data)) { counted += 1 }
                inputs += 1
            }
        }
        return (inputs, counted)
    }
}
#endif
