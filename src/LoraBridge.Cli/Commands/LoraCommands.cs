using System.CommandLine;
using LoraBridge.Engine;
using LoraBridge.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LoraBridge.Cli.Commands;

/// <summary>
/// <c>lorabridge loras list [--json] [--no-hash]</c> and <c>lorabridge loras show NAME [--json] [--tags N]</c>.
/// Thin: the work is in <see cref="LoraReports"/>.
/// </summary>
public static class LoraCommands
{
    /// <summary>Adds the <c>loras</c> group to the root command, with the catalog built from the app's settings.</summary>
    public static void Register(RootCommand root) => root.Subcommands.Add(Create(CatalogFromSettings));

    /// <summary>
    /// A catalog over the folders of <c>--webui-dir</c> (command line, <c>LORABRIDGE_WEBUIDIR</c> or appsettings, as the
    /// host binds them), with its hash cache in the data folder. Python is not started.
    /// </summary>
    public static LoraCatalog CatalogFromSettings(ParseResult parse)
    {
        using var host = CliHost.Build(parse);
        var o = host.Services.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
        // The same folders generation uses, the demo LoRAs included.
        return new ModelSources(o.ToWorkspaceSettings()).Catalog;
    }

    /// <summary>Builds the <c>loras</c> command group.</summary>
    /// <param name="catalogFactory">Makes the catalog for a parsed command line (so global options such as
    /// <c>--webui-dir</c> and the data folder are read by the caller).</param>
    public static Command Create(Func<ParseResult, LoraCatalog> catalogFactory)
    {
        var json = new Option<bool>("--json") { Description = "Write JSON instead of text" };
        var noHash = new Option<bool>("--no-hash") { Description = "Show only hashes already cached (the default; kept for scripts)" };
        var withHash = new Option<bool>("--hash") { Description = "Compute the hashes not cached yet (slow for large libraries; see 'loras hash --all')" };
        var baseFilter = new Option<string?>("--base") { Description = "Only LoRAs made for this base model: SD1, SD2 or SDXL" };
        var search = new Option<string?>("--search") { Description = "Only LoRAs whose name, alias, activation text or Civitai trained words/model name contain TEXT" };
        var list = new Command("list", "List LoRA-family files: name, alias, type, rank, base model, size, short hash (cached)");
        list.Options.Add(json);
        list.Options.Add(noHash);
        list.Options.Add(withHash);
        list.Options.Add(baseFilter);
        list.Options.Add(search);
        list.SetAction(parse =>
        {
            BaseFamily? family = null;
            if (parse.GetValue(baseFilter) is { } b)
            {
                if (!Enum.TryParse<BaseFamily>(b, ignoreCase: true, out var f) || f == BaseFamily.Unknown)
                {
                    parse.InvocationConfiguration.Error.WriteLine($"--base {b}: expected SD1, SD2 or SDXL");
                    return 2;
                }
                family = f;
            }
            var catalog = catalogFactory(parse);
            if (catalog.IndexProblem is { } problem) parse.InvocationConfiguration.Error.WriteLine("warning: " + TerminalText.Escape(problem));
            var rows = LoraReports.List(catalog, family, parse.GetValue(search), withHashes: parse.GetValue(withHash) && !parse.GetValue(noHash));
            // Names, aliases and errors come from files: escape control characters (JSON escapes them itself).
            parse.InvocationConfiguration.Output.Write(parse.GetValue(json)
                ? LoraReports.FormatJson(rows)
                : TerminalText.Escape(LoraReports.FormatTable(rows, catalog.Options.EffectiveLoraDirs), keepNewlines: true));
            return 0;
        });

        var name = new Argument<string>("name") { Description = "LoRA name or alias, as written in <lora:NAME:weight>" };
        var showJson = new Option<bool>("--json") { Description = "Write JSON instead of text" };
        var tags = new Option<int>("--tags") { Description = "How many training tags to show", DefaultValueFactory = _ => 20 };
        var show = new Command("show", "Show one LoRA: metadata, activation text, preferred weight, most frequent training tags");
        show.Arguments.Add(name);
        show.Options.Add(showJson);
        show.Options.Add(tags);
        show.SetAction(parse =>
        {
            try
            {
                var details = LoraReports.Show(catalogFactory(parse), parse.GetValue(name)!, Math.Max(0, parse.GetValue(tags)));
                parse.InvocationConfiguration.Output.Write(parse.GetValue(showJson) ? LoraReports.FormatShowJson(details)
                    : TerminalText.Escape(LoraReports.FormatShow(details), keepNewlines: true));
                return 0;
            }
            catch (LoraNotFoundException e)
            {
                parse.InvocationConfiguration.Error.WriteLine(TerminalText.Escape(e.Message));
                return 1;
            }
        });

        var all = new Option<bool>("--all") { Description = "Hash every LoRA that has no cached hash" };
        var hashNames = new Argument<string[]>("names") { Description = "LoRA names or aliases to hash", Arity = ArgumentArity.ZeroOrMore };
        var hash = new Command("hash", "Compute and cache LoRA hashes (A1111's: sshs_model_hash, addnet or full-file SHA-256)");
        hash.Options.Add(all);
        hash.Arguments.Add(hashNames);
        hash.SetAction(parse =>
        {
            var catalog = catalogFactory(parse);
            var names = parse.GetValue(hashNames) ?? [];
            if (!parse.GetValue(all) && names.Length == 0)
            {
                parse.InvocationConfiguration.Error.WriteLine("give LoRA names or --all");
                return 2;
            }
            try
            {
                if (parse.GetValue(all))
                {
                    int n = catalog.HashAll();
                    parse.InvocationConfiguration.Output.WriteLine($"{n} hashed, {catalog.Loras.Count - n} already known or unreadable");
                }
                foreach (var n in names)
                {
                    var e = catalog.Find(n);
                    parse.InvocationConfiguration.Output.WriteLine($"{catalog.ShortHashOf(e)}  {e.Name}  {catalog.HashOf(e)}");
                }
                return 0;
            }
            catch (LoraNotFoundException e)
            {
                parse.InvocationConfiguration.Error.WriteLine(e.Message);
                return 1;
            }
        });

        var loras = new Command("loras", "LoRA-family files in the A1111 folders");
        loras.Subcommands.Add(list);
        loras.Subcommands.Add(show);
        loras.Subcommands.Add(hash);
        return loras;
    }
}
