using System.CommandLine;
using System.Globalization;
using LoraBridge.Engine;
using LoraBridge.Extensions;
using LoraBridge.Python;
using LoraBridge.Tui;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LoraBridge.Cli.Commands;

/// <summary><c>tui</c>: the interactive terminal UI (prompt editor, live plan, LoRA list, generation with progress).</summary>
public static class TuiCommand
{
    /// <summary>Adds <c>tui</c>.</summary>
    public static void Register(RootCommand root)
    {
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Checkpoint name or path (default: configured, else the demo model)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Folder with the CLIP tokenizer files" };
        var output = new Option<string?>("--out", "-o") { Description = "Output folder (default outputs/txt2img-images/DATE)" };
        var command = new Command("tui", "Interactive terminal UI: edit a prompt with a live per-step plan, insert LoRAs and generate");
        command.Options.Add(checkpoint);
        command.Options.Add(tokenizer);
        command.Options.Add(output);
        command.SetAction(async (parse, ct) =>
        {
            if (!TuiApp.HasTerminal)
            {
                await Console.Error.WriteLineAsync("error: lorabridge tui needs a terminal on stdin and stdout (use 'lorabridge generate' in scripts)");
                return 1;
            }
            await Console.Out.WriteLineAsync(TuiApp.LoadingMessage);
            return await CliHost.RunAsync(parse, ct, (sp, token) =>
            {
                var o = sp.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
                var settings = o.ToWorkspaceSettings(parse.GetValue(checkpoint), parse.GetValue(tokenizer));
                var bridge = sp.GetRequiredService<PythonBridge>();
                var workspace = new GenerationWorkspace(settings, bridge);
                var outputDir = o.EffectiveOutputDir(parse.GetValue(output));
                var (w, h) = workspace.Sources.DefaultSize();
                var vm = new GeneratorViewModel(outputDir, $"{w}x{h}");
                var log = Path.Combine(o.EffectiveDataDir, "tui.log");
                // Extensions as `generate` loads them (same folders, settings and hooks); a unit that fails is
                // reported before the screen switches to the UI and counted on the status line.
                using var extensions = ExtensionCommands.Load(sp);
                workspace.Engine.Hooks = extensions;
                // Another checkpoint chosen in the form gets its own workspace on the same bridge and settings.
                var generator = new WorkspaceGenerator(workspace, LivePreviews.FromBridge(bridge),
                    name => new GenerationWorkspace(settings with { Checkpoint = name }, bridge))
                {
                    ReadyNote = ExtensionsNote(extensions.Units),
                };
                TuiApp.Run(vm, generator, log);
                return Task.FromResult(0);
            });
        });
        root.Subcommands.Add(command);
    }

    /// <summary>The status line's note on extensions: how many loaded and which were skipped; null when there are none.</summary>
    public static string? ExtensionsNote(IReadOnlyList<ExtensionUnit> units)
    {
        if (units.Count == 0) return null;
        var loaded = units.Count(u => u.Status == ExtensionStatus.Loaded);
        var skipped = units.Where(u => u.Status != ExtensionStatus.Loaded).Select(u => u.Name).ToList();
        var note = $"extensions: {loaded} loaded";
        if (skipped.Count > 0) note += $", {skipped.Count} skipped ({string.Join(", ", skipped)}: see the messages printed before the UI started)";
        return note;
    }
}
