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
        var noHash = new Option<bool>("--no-hash") { Description = "Skip hashing files that are not hashed yet" };
        var list = new Command("list", "List LoRA-family files: name, alias, type, rank, base model, size, short hash");
        list.Options.Add(json);
        list.Options.Add(noHash);
        list.SetAction(parse =>
        {
            var catalog = catalogFactory(parse);
            var rows = LoraReports.List(catalog, withHashes: !parse.GetValue(noHash));
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

        var loras = new Command("loras", "LoRA-family files in the A1111 folders");
        loras.Subcommands.Add(list);
        loras.Subcommands.Add(show);
        return loras;
    }
}
