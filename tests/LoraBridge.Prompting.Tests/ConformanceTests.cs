using System.Text.Json;
using LoraBridge.Prompting;

namespace LoraBridge.Prompting.Tests;

/// <summary>Every public A1111 record, every field, numbers compared as doubles.</summary>
public class ConformanceTests
{
    internal static IEnumerable<string> RecordLines() =>
        File.ReadLines(SharedData.Path("conformance", "prompts", "public.jsonl"));

    private static readonly string[] Fields =
        ["prompt", "steps", "hires_steps", "extra_networks", "activation", "multicond", "schedules", "multicond_schedules",
         "schedules_old", "negative_schedules", "attention"];

    [SharedFact]
    public void EveryPublicRecordMatches()
    {
        var failures = new List<string>();
        int total = 0;
        foreach (var line in RecordLines())
        {
            total++;
            using var expected = JsonDocument.Parse(line);
            var root = expected.RootElement;
            int? hires = root.GetProperty("hires_steps").ValueKind == JsonValueKind.Null ? null : root.GetProperty("hires_steps").GetInt32();
            var result = A1111Result.Compute(root.GetProperty("prompt").GetString()!, root.GetProperty("steps").GetInt32(), hires);
            using var actual = JsonDocument.Parse(result.ToJsonLine());
            var problems = Compare(root, actual.RootElement);
            if (problems.Count > 0)
                failures.Add(root.GetProperty("id").GetString() + " [" + root.GetProperty("category").GetString() + "] " + string.Join("; ", problems));
        }
        Assert.True(total == 3563, $"expected 3563 public records, read {total}");
        Assert.True(failures.Count == 0, $"{failures.Count}/{total} records differ:\n" + string.Join("\n", failures.Take(40)));
    }

    [SharedFact]
    public void ComparisonDetectsWrongResults()
    {
        // Guards the comparer itself: a result computed for other steps, or with an altered weight, must differ.
        var line = RecordLines().First(l => l.Contains("\"p00042-s20\"") || l.Contains("[a:b:5]"));
        using var expected = JsonDocument.Parse(line);
        var root = expected.RootElement;
        var wrong = A1111Result.Compute(root.GetProperty("prompt").GetString()!, root.GetProperty("steps").GetInt32() + 7, null);
        using var actual = JsonDocument.Parse(wrong.ToJsonLine());
        Assert.NotEmpty(Compare(root, actual.RootElement));
        using var a = JsonDocument.Parse("[1.1000000000000003]");
        using var b = JsonDocument.Parse("[1.1]");
        Assert.False(JsonEquals(a.RootElement, b.RootElement));
        using var c = JsonDocument.Parse("[-1]");
        using var d = JsonDocument.Parse("[-1.0]");
        Assert.True(JsonEquals(c.RootElement, d.RootElement));
    }

    internal static List<string> Compare(JsonElement expected, JsonElement actual)
    {
        var problems = new List<string>();
        var variants = expected.GetProperty("schedule_variants");
        foreach (var field in Fields)
        {
            var e = expected.GetProperty(field);
            var a = actual.GetProperty(field);
            if (field == "attention") { CompareAttention(e, a, variants.ValueKind == JsonValueKind.Object, problems); continue; }
            if (field == "multicond_schedules" && e.ValueKind == JsonValueKind.Array && a.ValueKind == JsonValueKind.Array
                && e.GetArrayLength() == a.GetArrayLength())
            {
                for (int i = 0; i < e.GetArrayLength(); i++)
                    if (!MatchesAnyVariant(e[i], a[i], variants, $"multicond_schedules/{i}"))
                        problems.Add($"{field}[{i}]: expected {e[i].GetRawText()} got {a[i].GetRawText()}");
                continue;
            }
            if (!MatchesAnyVariant(e, a, variants, field))
                problems.Add($"{field}: expected {Short(e)} got {Short(a)}");
        }
        return problems;
    }

    private static string Short(JsonElement e)
    {
        var t = e.GetRawText();
        return t.Length > 400 ? t[..400] + "..." : t;
    }

    private static bool MatchesAnyVariant(JsonElement expected, JsonElement actual, JsonElement variants, string key)
    {
        if (JsonEquals(expected, actual)) return true;
        if (variants.ValueKind == JsonValueKind.Object && variants.TryGetProperty(key, out var list))
            foreach (var v in list.EnumerateArray())
                if (JsonEquals(v[1], actual)) return true;
        return false;
    }

    private static void CompareAttention(JsonElement expected, JsonElement actual, bool hasVariants, List<string> problems)
    {
        var exp = expected.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
        foreach (var p in actual.EnumerateObject())
        {
            if (!exp.TryGetValue(p.Name, out var e)) { problems.Add($"attention: unexpected text {JsonSerializer.Serialize(p.Name)}"); continue; }
            if (!JsonEquals(e, p.Value)) problems.Add($"attention[{JsonSerializer.Serialize(p.Name)}]: expected {e.GetRawText()} got {p.Value.GetRawText()}");
        }
        // Texts only a hash-seed variant produces may be missing; every other expected text must be there.
        var got = actual.EnumerateObject().Select(p => p.Name).ToHashSet();
        if (!hasVariants)
            foreach (var name in exp.Keys)
                if (!got.Contains(name)) problems.Add($"attention: missing text {JsonSerializer.Serialize(name)}");
    }

    internal static bool JsonEquals(JsonElement a, JsonElement b)
    {
        if (IsNumberLike(a) && IsNumberLike(b)) return NumberEquals(ToDouble(a), ToDouble(b));
        if (a.ValueKind != b.ValueKind) return false;
        switch (a.ValueKind)
        {
            case JsonValueKind.Object:
                var ap = a.EnumerateObject().ToList();
                var bp = b.EnumerateObject().ToList();
                // Key order is part of A1111's result (dict insertion order).
                return ap.Count == bp.Count && ap.Zip(bp).All(x => x.First.Name == x.Second.Name && JsonEquals(x.First.Value, x.Second.Value));
            case JsonValueKind.Array:
                return a.GetArrayLength() == b.GetArrayLength() && a.EnumerateArray().Zip(b.EnumerateArray()).All(x => JsonEquals(x.First, x.Second));
            case JsonValueKind.String:
                return a.GetString() == b.GetString();
            default:
                return a.GetRawText() == b.GetRawText();
        }
    }

    private static bool IsNumberLike(JsonElement e) =>
        e.ValueKind == JsonValueKind.Number || e.ValueKind == JsonValueKind.String && e.GetString() is "NaN" or "Infinity" or "-Infinity";

    private static double ToDouble(JsonElement e) => e.ValueKind == JsonValueKind.Number
        ? double.Parse(e.GetRawText(), System.Globalization.CultureInfo.InvariantCulture)
        : e.GetString() switch { "NaN" => double.NaN, "Infinity" => double.PositiveInfinity, _ => double.NegativeInfinity };

    private static bool NumberEquals(double x, double y) =>
        double.IsNaN(x) ? double.IsNaN(y) : x.Equals(y) && double.IsNegative(x) == double.IsNegative(y);
}
