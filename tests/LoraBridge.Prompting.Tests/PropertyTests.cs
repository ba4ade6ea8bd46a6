using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using LoraBridge.Prompting;

namespace LoraBridge.Prompting.Tests;

public class PropertyTests
{
    private static readonly string[] Tokens =
    [
        "a", "cat", " ", "  ", "[", "]", "(", ")", ":", "|", "5", "0.5", "1.5", "-2", "1e999", "\\", "\\(", "AND", "BREAK",
        "<lora:x:0.8>", "<lora:y:1:0.5>", "<lyco:z:te=0.3>", "<hypernet:h:1>", "<lora:w:0@0,1@0.5>", "<lora:v:1:stop=0.5>",
        ",", "1.2", "é", "\n", "\t", "😀", "=", "<", ">",
    ];

    private static Arbitrary<string> PromptLike() =>
        Gen.Elements(Tokens).ArrayOf().Select(parts => string.Concat(parts)).ToArbitrary();

    // Well-formed chunks with tags only between them, so no tag can end up inside prompt editing.
    private static Arbitrary<string> PlainSyntaxPrompt()
    {
        var word = Gen.Elements("cat", "dog", "a photo", "x y", "BREAK", "AND", "é");
        var chunk = Gen.OneOf(
            word,
            from a in word from b in word from n in Gen.Elements("3", "0.5", "1.5", "12", "0") select $"[{a}:{b}:{n}]",
            from a in word from n in Gen.Elements("3", "0.25") select $"[{a}::{n}]",
            from a in word from b in word select $"[{a}|{b}]",
            from a in word from w in Gen.Elements("1.2", "0.8") select $"({a}:{w})",
            from a in word select $"(({a}))",
            Gen.Elements("<lora:x:0.8>", "<lora:y:1:0.5>", "<lyco:z:te=0.3:dyn=4>", "<hypernet:h:1>", "<lora:bad:x>"),
            Gen.Elements(" ", ", ", " AND ", ":1.3"));
        return chunk.ArrayOf().Select(parts => string.Concat(parts)).ToArbitrary();
    }

    private static Arbitrary<(int Steps, int? Hires)> StepsArb() =>
        (from s in Gen.Choose(1, 40)
         from h in Gen.OneOf(Gen.Constant((int?)null), Gen.Choose(1, 30).Select(x => (int?)x))
         select (s, h)).ToArbitrary();

    [Property(MaxTest = 300)]
    public Property NeverThrowsOnRandomStrings() =>
        Prop.ForAll(ArbMap.Default.ArbFor<string>(), StepsArb(), (s, st) =>
        {
            var text = s ?? "";
            _ = PromptPlan.Create(text, st.Steps, st.Hires);
            _ = A1111Result.Compute(text, st.Steps, st.Hires).ToJsonLine();
            _ = ScheduleParser.Parse(text);
            return true;
        });

    [Property(MaxTest = 300)]
    public Property NeverThrowsOnPromptLikeStrings() =>
        Prop.ForAll(PromptLike(), StepsArb(), (s, st) =>
        {
            var plan = PromptPlan.Create(s, st.Steps, st.Hires);
            _ = PromptCli.PlanJson(plan);
            _ = A1111Result.Compute(s, st.Steps, st.Hires).ToJsonLine();
            return true;
        });

    [Property(MaxTest = 300)]
    public Property WithoutExtendedSyntaxThePlanIsA1111s() =>
        Prop.ForAll(PlainSyntaxPrompt(), StepsArb(), (s, st) =>
        {
            var with = PromptPlan.Create(s, st.Steps, st.Hires, extensions: true);
            var without = PromptPlan.Create(s, st.Steps, st.Hires, extensions: false);
            if (with.UsesExtendedSyntax) return false;
            if (PromptCli.PlanJson(with) != PromptCli.PlanJson(without)) return false;
            // Texts are exactly A1111's multicond schedules for the pass.
            var a1111 = A1111Result.Compute(s, st.Steps, st.Hires);
            var last = with.Passes[^1];
            for (int i = 0; i < last.Parts.Count; i++)
            {
                var expected = a1111.MulticondSchedules[i];
                var got = last.Parts[i].Schedule;
                if (expected.IsOk != got.IsOk) return false;
                if (expected.IsOk && !expected.Value!.SequenceEqual(got.Value!)) return false;
            }
            return true;
        });

    [Property(MaxTest = 300)]
    public Property SchedulesCoverEveryStepWithoutGaps() =>
        Prop.ForAll(PromptLike(), StepsArb(), (s, st) =>
        {
            var opts = new ScheduleOptions(st.Steps, st.Hires);
            var r = Scheduler.Schedule(ExtraNetworks.Parse(s).Prompt, opts);
            if (!r.IsOk) return r.Error!.Kind is PromptErrorKind.OverflowError or PromptErrorKind.RecursionError;
            var ends = r.Value!.Select(e => e.EndAtStep).ToList();
            // (previous end, end] tiles 1..N.
            bool tiles = ends.Count > 0 && ends[^1] == opts.TotalSteps && ends[0] >= 1 && ends.Zip(ends.Skip(1)).All(p => p.First < p.Second);
            var plan = PromptPlan.Create(s, st.Steps, st.Hires);
            foreach (var pass in plan.Passes)
                foreach (var part in pass.Parts.Where(p => p.Schedule.IsOk))
                {
                    var calls = part.Texts.SelectMany(t => t.Ranges).SelectMany(rg => Enumerable.Range(rg.First, rg.Last - rg.First + 1)).Order().ToList();
                    if (!calls.SequenceEqual(Enumerable.Range(0, pass.Steps))) return false;
                }
            return tiles;
        });

    [Property(MaxTest = 500)]
    public Property PrintedTreeParsesToTheSameTree() =>
        Prop.ForAll(PromptLike(), s =>
        {
            var tree = ScheduleParser.Parse(s);
            if (!tree.IsOk) return true;
            var printed = tree.Value!.Print();
            var again = ScheduleParser.Parse(printed);
            return printed == s && again.IsOk && again.Value!.StructurallyEquals(tree.Value);
        });
}
