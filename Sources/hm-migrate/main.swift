import ArgumentParser
import HearthKit

@main
struct MigrateCommand: ParsableCommand {
    static let configuration = MigrateCLI.configuration
}
