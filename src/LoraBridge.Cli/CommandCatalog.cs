using System.CommandLine;
using LoraBridge.Cli.Commands;

namespace LoraBridge.Cli;

/// <summary>
/// The one place command groups are registered. A group is a static class in <c>Commands/</c> with
/// <c>public static void Register(RootCommand root)</c>; its actions reach the host's services through
/// <see cref="CliHost.RunAsync"/> (options, <c>PythonBridge</c>, logging).
/// </summary>
public static class CommandCatalog
{
    /// <summary>Builds the root command with the global options and every group.</summary>
    public static RootCommand Create()
    {
        var root = new RootCommand("LoraBridge: Stable Diffusion 1.x with A1111-style prompts and LoRA, driven from .NET over an embedded Python/torch.");
        CliHost.AddGlobalOptions(root);

        RuntimeCommands.Register(root);   // doctor, setup
        DiagnosticCommands.Register(root); // hidden: python-loop
        var prompt = PromptCommands.Create();          // prompt plan
        prompt.Subcommands.Add(TokenizeCommand.Create()); // prompt tokenize
        root.Subcommands.Add(prompt);
        LoraCommands.Register(root);       // loras list, loras show
        GenerateCommands.Register(root);   // generate, batch, info
        Img2ImgCommands.Register(root);    // img2img, upscalers list, upscale
        TuiCommand.Register(root);         // tui
        ExtensionCommands.Register(root);  // extensions list
        EmbeddingCommands.Register(root);  // embeddings list
        ConformanceCommands.Register(root); // conformance embeddings
        ServeCommands.Register(root);      // serve (A1111 web API)
        return root;
    }
}
