using System.CommandLine;
using LoraBridge.Engine;
using LoraBridge.Python;
using LoraBridge.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LoraBridge.Cli.Commands;

/// <summary><c>serve</c>: AUTOMATIC1111's web API over the same engine, catalog and extensions as <c>generate</c>.</summary>
public static class ServeCommands
{
    /// <summary>Adds <c>serve</c>.</summary>
    public static void Register(RootCommand root)
    {
        var listen = new Option<string>("--listen") { Description = "Address to bind (127.0.0.1: this machine only; 0.0.0.0: every interface)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port", DefaultValueFactory = _ => 7860 };
        var auth = new Option<string?>("--api-auth") { Description = "user:password for HTTP basic auth, or several as u1:p1,u2:p2 (as A1111's --api-auth)" };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Checkpoint name or path (default: configured, else the demo model)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Folder with the CLIP tokenizer files" };
        var outDir = new Option<string?>("--out", "-o") { Description = "Folder for images of requests with save_images (default outputs/txt2img-images/DATE)" };
        var command = new Command("serve", "Serve A1111's web API (/sdapi/v1/txt2img, options, loras, …) with one loaded model; jobs run one at a time in order");
        foreach (var o in new Option[] { listen, port, auth, checkpoint, tokenizer, outDir }) command.Options.Add(o);
        command.SetAction((parse, ct) => CliHost.RunAsync(parse, ct, async (sp, token) =>
        {
            var o = sp.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
            var bridge = sp.GetRequiredService<PythonBridge>();
            bridge.StartBooting();
            using var extensions = ExtensionCommands.Load(sp);
            var settings = new ServerSettings
            {
                Listen = parse.GetValue(listen)!,
                Port = parse.GetValue(port),
                ApiAuth = parse.GetValue(auth),
                OutputDir = parse.GetValue(outDir) is { } d ? Path.GetFullPath(d) : o.OutputDir,
                Scripts = [.. extensions.Extensions.Select(e => e.Name)],
            };
            GenerationWorkspace NewWorkspace(string? name)
            {
                var workspace = new GenerationWorkspace(o.ToWorkspaceSettings(name ?? parse.GetValue(checkpoint), parse.GetValue(tokenizer)), bridge);
                workspace.Engine.Hooks = extensions;
                return workspace;
            }
            await using var server = new A1111Server(settings, NewWorkspace, bridge);
            await server.StartAsync(token);
            // On stdout, as A1111's "Running on local URL": scripts that start the server read the address (port 0 picks one).
            Console.Out.WriteLine($"serving A1111's API on {server.Address} (Ctrl+C stops)");
            await server.RunUntilCancelledAsync(token);
            return 0;
        }));
        root.Subcommands.Add(command);
    }
}
