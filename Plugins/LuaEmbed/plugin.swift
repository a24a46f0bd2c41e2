import Foundation
import PackagePlugin

/// Embeds the `.lua` files under a target's `Lua/` folder as Swift constants (`<Target>Lua`
/// enum), so Lua lives in real source files beside the module that owns it.
@main
struct LuaEmbed: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let module = target as? SourceModuleTarget else { return [] }
        let folder = module.directoryURL.appending(path: "Lua")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path())) ?? []
        let scripts = names.filter { $0.hasSuffix(".lua") }.sorted().map { folder.appending(path: $0) }
        guard !scripts.isEmpty else { return [] }
        // Preludes of the modules this one builds on (e.g. the audit chain's) may be included.
        var includes: [String] = []
        var inputs = scripts
        for dependency in module.recursiveTargetDependencies {
            guard let other = dependency as? SourceModuleTarget else { continue }
            let otherFolder = other.directoryURL.appending(path: "Lua")
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: otherFolder.path())) ?? []).filter { $0.hasSuffix(".lua") }
            guard !files.isEmpty else { continue }
            includes += ["-I", otherFolder.path()]
            inputs += files.map { otherFolder.appending(path: $0) }
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "\(target.name)Lua.swift")
        return [.buildCommand(
            displayName: "Embedding \(scripts.count) Lua scripts of \(target.name)",
            executable: try context.tool(named: "lua-embed").url,
            arguments: [output.path(), "\(target.name)Lua"] + includes + scripts.map { $0.path() },
            inputFiles: inputs,
            outputFiles: [output]
        )]
    }
}
