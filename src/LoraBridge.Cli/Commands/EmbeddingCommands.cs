using System.CommandLine;
using LoraBridge.Engine;
using LoraBridge.Models;
using LoraBridge.Python;
using LoraBridge.Tokenizers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LoraBridge.Cli.Commands;

/// <summary><c>lorabridge embeddings list [--json]</c>: the textual-inversion embeddings generation would use.</summary>
public static class EmbeddingCommands
{
    /// <summary>Adds the <c>embeddings</c> group.</summary>
    public static void Register(RootCommand root) => root.Subcommands.Add(Create());

    /// <summary>
    /// Starts Python only when a pickle or image embedding is not in the description cache yet: safetensors files are
    /// read from their headers in C#.
    /// </summary>
    private sealed class LazyPythonReader(IServiceProvider services) : IEmbeddingFileReader
    {
        public Task<IReadOnlyList<EmbeddingFileInfo>> DescribeAsync(IReadOnlyList<string> paths, CancellationToken ct) =>
            new PythonEmbeddingReader(services.GetRequiredService<PythonBridge>()).DescribeAsync(paths, ct);
    }

    /// <summary>Loads the database for the configured checkpoint's tokenizer and width (Python only when needed).</summary>
    private static async Task<(EmbeddingDatabase Db, ClipTokenizer Tokenizer)> LoadAsync(IServiceProvider sp, string? checkpoint, string? tokenizer,
        CancellationToken token)
    {
        var o = sp.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
        var sources = new ModelSources(o.ToWorkspaceSettings(checkpoint, tokenizer));
        string path = sources.FindConfiguredCheckpoint()
            ?? GenerationWorkspace.FindExistingDemoCheckpoint(sources) // no Python once the demo model exists
            ?? await sp.GetRequiredService<PythonBridge>().EnsureDemoModelAsync(sources.DemoDir, token).ConfigureAwait(false);
        var tok = ClipTokenizer.Load(sources.LocateTokenizer(path));
        var db = await EmbeddingDatabase.LoadAsync(EmbeddingSources.Folders(sources.Settings), EmbeddingSources.TextEncoderWidth(path), tok,
            new LazyPythonReader(sp), sources.Catalog.Hashes,
            new EmbeddingInfoCache(Path.Combine(sources.Settings.DataDir, EmbeddingSources.InfoCacheFile)), token).ConfigureAwait(false);
        return (db, tok);
    }

    /// <summary>The embeddings section <c>prompt plan</c> prints when <c>--embeddings-dir</c> is given.</summary>
    public static int PlanSection(ParseResult parse, string prompt, int steps, TextWriter output) =>
        CliHost.RunAsync(parse, CancellationToken.None, async (sp, token) =>
        {
            var (db, tok) = await LoadAsync(sp, null, null, token).ConfigureAwait(false);
            var planner = new A1111PromptPlanner();
            var plan = TextualInversionPlan.Create(prompt, "", steps, new PromptChunker(tok, embeddings: db.Lookup), db.ExpectedShape, planner.Attention);
            output.WriteLine();
            output.Write(TextualInversionReport.Format(plan, db));
            return 0;
        }).GetAwaiter().GetResult();

    /// <summary>Builds the <c>embeddings</c> command group.</summary>
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Write JSON instead of text" };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Checkpoint whose text encoder decides which widths fit (default: configured, else the demo model)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Folder with the CLIP tokenizer files" };
        var list = new Command("list", "List embeddings: name, vectors, width, file, short hash, loaded/skipped/unreadable and why");
        list.Options.Add(json);
        list.Options.Add(checkpoint);
        list.Options.Add(tokenizer);
        list.SetAction((parse, ct) => CliHost.RunAsync(parse, ct, async (sp, token) =>
        {
            var (db, _) = await LoadAsync(sp, parse.GetValue(checkpoint), parse.GetValue(tokenizer), token).ConfigureAwait(false);
            var rows = EmbeddingReports.List(db);
            parse.InvocationConfiguration.Output.Write(parse.GetValue(json) ? EmbeddingReports.FormatJson(rows) : EmbeddingReports.FormatTable(db, rows));
            return 0;
        }));
        var group = new Command("embeddings", "Textual-inversion embeddings (A1111's embeddings/ folder and --embeddings-dir)");
        group.Subcommands.Add(list);
        return group;
    }
}
