using System.CommandLine;
using LoraBridge.Engine;
using LoraBridge.Python;
using Microsoft.Extensions.DependencyInjection;

namespace LoraBridge.Cli.Commands;

/// <summary>
/// <c>lorabridge conformance embeddings RECORDS.jsonl OUT_DIR --embeddings-dir DIR --text-encoder WEIGHTS --tokenizer DIR</c>:
/// writes the candidate files that ../shared/conformance/embeddings/compare_embeddings.py checks.
/// </summary>
public static class ConformanceCommands
{
    /// <summary>Adds the <c>conformance</c> group.</summary>
    public static void Register(RootCommand root) => root.Subcommands.Add(Create());

    /// <summary>Builds the <c>conformance</c> command group.</summary>
    public static Command Create()
    {
        var records = new Argument<string>("records") { Description = "Records (JSON lines with id, prompt, negative_prompt, steps)" };
        var outDir = new Argument<string>("out-dir") { Description = "Folder for records.jsonl, db.json and cond/<id>.npz" };
        var te = new Option<string>("--text-encoder") { Description = "Weights holding the CLIP text encoder", Required = true };
        var tok = new Option<string>("--tokenizer") { Description = "Folder with vocab.json and merges.txt (or bpe_simple_vocab_16e6.txt.gz)", Required = true };
        var embeddings = new Command("embeddings", "Textual-inversion embeddings as A1111 v1.10.1 finds, chunks and encodes them");
        embeddings.Arguments.Add(records);
        embeddings.Arguments.Add(outDir);
        embeddings.Options.Add(te);
        embeddings.Options.Add(tok);
        embeddings.SetAction((parse, ct) => CliHost.RunAsync(parse, ct, async (sp, token) =>
        {
            // --embeddings-dir is the global option (LoraBridge:EmbeddingsDirs); the first folder given is scanned.
            if (parse.GetValue(CliHost.EmbeddingsDir) is not { Length: > 0 } dirs)
                throw new ArgumentException("conformance embeddings needs --embeddings-dir DIR");
            var bridge = sp.GetRequiredService<PythonBridge>();
            int n = await EmbeddingConformance.RunAsync(parse.GetValue(records)!, parse.GetValue(outDir)!, dirs[0], parse.GetValue(te)!,
                parse.GetValue(tok)!, bridge, parse.InvocationConfiguration.Error, token).ConfigureAwait(false);
            parse.InvocationConfiguration.Output.WriteLine($"{n} records written to {parse.GetValue(outDir)}");
            return 0;
        }));
        var group = new Command("conformance", "Write candidate files for the reference checks in ../shared/conformance");
        group.Subcommands.Add(embeddings);
        return group;
    }
}
