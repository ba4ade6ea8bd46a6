using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using LoraBridge.Batch;
using LoraBridge.Engine;

namespace LoraBridge.Cli.Commands;

/// <summary>
/// What <c>batch</c> writes about its jobs: the <c>batch-*.jsonl</c> manifest (one line per image, with the job's full
/// settings and its template line) and the <c>--dry-run</c> listing.
/// </summary>
public static class BatchManifest
{
    // Prompts are full of '<lora:…>'; the default encoder would write them as \u003C, unreadable in a text editor.
    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>One manifest line: the image, the job that made it (1-based index, template line) and every setting it ran with.</summary>
    public static string Line(int job, BatchJob source, GenerationRequest request, long seed, string file) =>
        JsonSerializer.Serialize(new
        {
            job,
            line = source.Line,
            prompt = request.Prompt,
            negative_prompt = request.NegativePrompt,
            seed,
            steps = request.Steps,
            sampler = request.Sampler,
            schedule = request.Schedule,
            cfg_scale = request.CfgScale,
            width = request.Width,
            height = request.Height,
            batch_size = request.BatchSize,
            batch_count = request.BatchCount,
            clip_skip = request.ClipSkip,
            randn_source = request.RandnSource,
            file,
            x = source.X,
            y = source.Y,
        }, Json);

    /// <summary>The dry-run listing of one job: index, template line, settings; the prompts on their own lines.</summary>
    public static IEnumerable<string> Describe(int job, BatchJob source, GenerationRequest r)
    {
        var seed = r.Seed < 0 ? "random" : r.Seed.ToString(CultureInfo.InvariantCulture);
        var batch = r.BatchSize > 1 || r.BatchCount > 1 ? $"  batch {r.BatchSize}x{r.BatchCount}" : "";
        yield return string.Create(CultureInfo.InvariantCulture,
            $"{job,4}  line {source.Line}  seed {seed}  steps {r.Steps}  {r.Sampler}  {r.Schedule}  cfg {r.CfgScale}  {r.Width}x{r.Height}{batch}");
        yield return $"      prompt: {r.Prompt}";
        if (r.NegativePrompt.Length > 0) yield return $"      negative: {r.NegativePrompt}";
    }
}
