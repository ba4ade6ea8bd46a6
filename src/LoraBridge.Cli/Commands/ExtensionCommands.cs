using System.CommandLine;
using LoraBridge.Extensions;
using LoraBridge.Python;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LoraBridge.Cli.Commands;

/// <summary>
/// <c>lorabridge extensions list [--dir DIR]... [--json]</c>, and <see cref="Load"/>, which gives a command the
/// configured extensions as engine hooks.
/// </summary>
/// <remarks>
/// Configuration (section <c>LoraBridge:Extensions</c>): <c>Dirs</c> (more folders, after the defaults),
/// <c>Enabled</c> (<c>false</c> loads none), and per-extension settings as <c>NAME:KEY</c>
/// (e.g. <c>LORABRIDGE_EXTENSIONS__PROMPTSUFFIX__SUFFIX</c>).
/// </remarks>
public static class ExtensionCommands
{
    /// <summary>Configuration section of the extension settings.</summary>
    public const string Section = LoraBridgeOptions.Section + ":Extensions";

    /// <summary>Adds the <c>extensions</c> group to the root command.</summary>
    public static void Register(RootCommand root)
    {
        var dirs = new Option<string[]>("--dir") { Description = "Another extension folder (repeatable)", HelpName = "dir" };
        var json = new Option<bool>("--json") { Description = "Write JSON instead of text" };
        var list = new Command("list", "Compile and list the extensions: name, file, status, compile errors (exit 1 when any failed)");
        list.Options.Add(dirs);
        list.Options.Add(json);
        list.SetAction((parse, ct) => CliHost.RunAsync(parse, ct, (sp, _) =>
        {
            var folders = Folders(sp, parse.GetValue(dirs) ?? []);
            using var set = ExtensionLoader.Load(folders, Host(sp), CacheDir(sp));
            parse.InvocationConfiguration.Output.Write(parse.GetValue(json)
                ? ExtensionReport.FormatJson(set.Units)
                : ExtensionReport.FormatText(set.Units, folders));
            return Task.FromResult(set.Units.All(u => u.Status == ExtensionStatus.Loaded) ? 0 : 1);
        }));

        var group = new Command("extensions", "C# extensions compiled at load time from the extension folders");
        group.Subcommands.Add(list);
        root.Subcommands.Add(group);
    }

    /// <summary>
    /// Loads the configured extensions for a generating command (empty when <c>Enabled</c> is false); units that fail
    /// are logged as warnings with their compile errors and skipped. Set the result as <c>GenerationEngine.Hooks</c>
    /// and dispose it after the jobs.
    /// </summary>
    public static ExtensionSet Load(IServiceProvider sp)
    {
        var config = sp.GetRequiredService<IConfiguration>().GetSection(Section);
        var folders = config.GetValue("Enabled", true) ? Folders(sp, []) : [];
        var set = ExtensionLoader.Load(folders, Host(sp), CacheDir(sp));
        var log = sp.GetRequiredService<ILoggerFactory>().CreateLogger("LoraBridge.Extensions");
        foreach (var u in set.Units.Where(u => u.Status != ExtensionStatus.Loaded))
            log.LogWarning("extension {Path} skipped: {Reason}", u.Path,
                u.LoadError ?? string.Join(Environment.NewLine, u.Errors));
        return set;
    }

    private static IReadOnlyList<string> Folders(IServiceProvider sp, IEnumerable<string> extra)
    {
        var o = sp.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
        var configured = sp.GetRequiredService<IConfiguration>().GetSection(Section + ":Dirs").Get<string[]>() ?? [];
        return [.. ExtensionLoader.DefaultFolders(o.EffectiveDataDir), .. configured.Select(Path.GetFullPath), .. extra.Select(Path.GetFullPath)];
    }

    /// <summary>Compiled extensions by content hash (<c>&lt;data dir&gt;/extension-cache</c>): unchanged extensions skip Roslyn.</summary>
    private static string CacheDir(IServiceProvider sp) =>
        Path.Combine(sp.GetRequiredService<IOptions<LoraBridgeOptions>>().Value.EffectiveDataDir, "extension-cache");

    private static ExtensionHost Host(IServiceProvider sp)
    {
        var o = sp.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
        var config = sp.GetRequiredService<IConfiguration>().GetSection(Section);
        var log = sp.GetRequiredService<ILoggerFactory>().CreateLogger("LoraBridge.Extensions");
        // Python starts only when an extension first runs Python code. The models folders are the ones the upscalers
        // are looked up in (<webui>/models, then <data dir>/models), so an extension finds a user's A1111 files.
        return new ExtensionHost(Path.Combine(o.EffectiveDataDir, "extension-data"), key => config[key],
            line => log.LogInformation("{Line}", line), () => sp.GetRequiredService<PythonBridge>(),
            LoraBridge.Engine.UpscalerLocations.ModelsDirs(o.ToWorkspaceSettings()));
    }
}
