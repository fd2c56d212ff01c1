import ArgumentParser
import Diffusers
import Foundation

/// The `diffuse` command line. Every failure ends as one `error: ...` line on stderr and
/// exit status 1; help and version requests exit 0.
@main
struct Diffuse: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diffuse",
        abstract: "Diffusion-model checkpoints and inference in Swift.",
        version: DiffuseVersion.current,
        subcommands: [Generate.self, PlanCommand.self, Inspect.self, Shard.self, Cast.self])

    static func main() {
        OpenMPWaitPolicy.applyByRestarting()
        let command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            // Help, --version and the like are "errors" that exit cleanly.
            if exitCode(for: error) == .success { exit(withError: error) }
            fail(message(for: error))
        }
        do {
            var command = command
            try command.run()
        } catch {
            // The help command ArgumentParser returns for --help "fails" with a clean exit.
            if exitCode(for: error) == .success { exit(withError: error) }
            fail(describe(error))
        }
    }

    /// One sentence for any error `run()` throws: the project's errors describe themselves
    /// (CustomStringConvertible). Every file the project touches goes through its own checks
    /// (`InputFile`, `OutputFiles`), so a Foundation error here is a gap: it is named as one
    /// rather than shown in Foundation's words, which mislead ("You don't have permission.").
    static func describe(_ error: Error) -> String {
        if type(of: error) is NSObject.Type {
            let error = error as NSError
            let path = (error.userInfo[NSFilePathErrorKey] as? String).map { " on \($0)" } ?? ""
            return "a system operation\(path) failed (\(error.domain) \(error.code)) in a place that does not check its files yet; please report it"
        }
        return String(describing: error)
    }

    static func fail(_ message: String) -> Never {
        let line = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: " ")
        let text = line.hasPrefix("error: ") ? line : "error: " + (line.hasPrefix("Error: ") ? String(line.dropFirst(7)) : line)
        FileHandle.standardError.write(Data((text + "\n").utf8))
        Foundation.exit(1)
    }
}
