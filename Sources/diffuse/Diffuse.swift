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
        subcommands: [Generate.self, Inspect.self, Shard.self, Cast.self])

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
    /// (CustomStringConvertible); Foundation's errors give their localized text.
    static func describe(_ error: Error) -> String {
        if type(of: error) is NSObject.Type { return (error as NSError).localizedDescription }
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
