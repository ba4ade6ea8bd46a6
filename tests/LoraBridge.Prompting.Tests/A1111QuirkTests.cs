using LoraBridge.Prompting;

namespace LoraBridge.Prompting.Tests;

/// <summary>Spot checks of A1111 quirks with their expected values from the conformance README.</summary>
public class A1111QuirkTests
{
    private static string Sched(string prompt, int steps, int? hires = null, bool old = false)
    {
        var r = Scheduler.Schedule(prompt, new ScheduleOptions(steps, hires, old));
        return r.IsOk ? string.Join(" ", r.Value!.Select(e => $"[{e.EndAtStep},'{e.Text}']")) : "error:" + r.Error!.PythonType;
    }

    [Theory]
    [InlineData("a [b:3]", 10, "[3,'a '] [10,'a b']")]
    [InlineData("a [b : c : 1] d", 10, "[1,'a b  d'] [10,'a  c  d']")]
    [InlineData("a[b:[c:d:2]:1]e", 10, "[1,'abe'] [2,'ace'] [10,'ade']")]
    [InlineData("a [unbalanced", 10, "[10,'a [unbalanced']")]
    [InlineData("((a][:b:c [d:3]", 10, "[3,'((a][:b:c '] [10,'((a][:b:c d']")]
    [InlineData("[fe|||]male", 4, "[1,'female'] [2,'male'] [3,'male'] [4,'male']")]
    [InlineData("[a:b:1.0]", 10, "[10,'a']")]
    [InlineData("[a:b:1]", 10, "[1,'a'] [10,'b']")]
    [InlineData("[a:b:5e-1]", 10, "[10,'b']")]
    [InlineData("[a:b:0.57]", 20, "[11,'a'] [20,'b']")]
    [InlineData("[[a:b:5]", 10, "[5,'[a'] [10,'[b']")]
    [InlineData("[a:b:c]", 10, "[10,'[a:b:c]']")]
    [InlineData("[::5]", 10, "[5,''] [10,'']")]
    [InlineData("[a\\:b:c:5]", 10, "[5,'a\\:b'] [10,'c']")]
    [InlineData("[ a : b :\t5\n]", 10, "[5,' a '] [10,' b ']")]
    [InlineData("a|b [c:d:5]", 10, "[10,'a|b [c:d:5]']")]
    [InlineData("a [{b|d{:.5] c", 10, "[10,'a [{b|d{:.5] c']")]
    [InlineData("[a:b:５]", 10, "[10,'[a:b:５]']")]
    [InlineData("trailing \\", 10, "[10,'trailing \\']")]
    [InlineData("[a:b:1e999]", 10, "error:OverflowError")]
    public void SchedulesMatchA1111(string prompt, int steps, string expected) => Assert.Equal(expected, Sched(prompt, steps));

    [Fact]
    public void HiresAndOldScheduling()
    {
        Assert.Equal("[20,'a b c']", Sched("a [b:.5] c", 10, 20));
        Assert.Equal("[10,'a  c'] [20,'a b c']", Sched("a [b:1.5] c", 10, 20));
        Assert.Equal("[2,'a'] [20,'b']", Sched("[a:b:1.15]", 10, 20)); // (1.15-1.0)*20 = 2.9999...
        Assert.Equal("[5,'a'] [10,'b']", Sched("[a:b:0.5]", 10, 20, old: true));
    }

    [Fact]
    public void DeepNestingRaisesRecursionErrorButModerateNestingWorks()
    {
        var deep = new string('(', 400) + "x" + new string(')', 400);
        Assert.Equal("error:RecursionError", Sched(deep, 10));
        var ok = new string('(', 80) + "[a:b:5]" + new string(')', 80);
        Assert.StartsWith("[5,", Sched(ok, 10));
        // A flood of unclosed brackets must neither crash nor recurse.
        Assert.Equal("[10,'" + new string('[', 50000) + "']", Sched(new string('[', 50000), 10));
        var nested = new string('(', 20000) + "x" + new string(')', 20000);
        Assert.Equal("error:RecursionError", Sched(nested, 10));
    }

    [Fact]
    public void LongPromptsScheduleCorrectly()
    {
        var groups = string.Concat(Enumerable.Repeat("(a)[b:c:5]:", 3000));
        var r = Scheduler.Schedule(groups, new ScheduleOptions(10)).Value!;
        Assert.Equal([5, 10], r.Select(e => e.EndAtStep));
        Assert.Equal(string.Concat(Enumerable.Repeat("(a)b:", 3000)), r[0].Text);
        Assert.Equal(string.Concat(Enumerable.Repeat("(a)c:", 3000)), r[1].Text);
    }

    private static string Att(string text)
    {
        var r = Attention.Parse(text);
        return r.IsOk ? string.Join(" ", r.Value!.Select(f => $"['{f.Text}',{f.Weight.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}]")) : "error:" + r.Error!.PythonType;
    }

    [Theory]
    [InlineData("((a:1.3))", "['a',1.4300000000000002]")]
    [InlineData("(((sky)))", "['sky',1.3310000000000004]")]
    [InlineData("[(a:1.5)]", "['a',1.3636363636363635]")]
    [InlineData("[[a]]", "['a',0.8264462809917354]")]
    [InlineData("a)", "['a)',1]")]
    [InlineData("(a:1.2))", "['a',1.2] [')',1]")]
    [InlineData("(a]", "['a]',1.1]")]
    [InlineData("(a:１.５)", "['a',1.5]")]
    [InlineData("(a:1e2)", "['a:1e2',1.1]")]
    [InlineData("(a:1.2.3)", "error:ValueError")]
    [InlineData("\\a\\(", "['a(',1]")]
    [InlineData("(:1.2)", "['',1]")]
    [InlineData("(a::1.2)", "['a:',1.2]")]
    [InlineData("BREAK a", "['',1] ['BREAK',-1] ['a',1]")]
    [InlineData("(a BREAK b)", "['a',1.1] ['BREAK',-1.1] ['b',1.1]")]
    [InlineData("aBREAKb BREAK_", "['aBREAKb BREAK_',1]")]
    [InlineData("a\u00a0BREAK\u001cb", "['a',1] ['BREAK',-1] ['b',1]")]
    public void AttentionMatchesA1111(string text, string expected) => Assert.Equal(expected, Att(text));

    [Fact]
    public void BreakMarkerStaysAnIntegerUntilMultiplied()
    {
        var plain = Attention.Parse("a BREAK b").Value!;
        Assert.True(plain[1].IsIntegerWeight && plain[1].IsBreak);
        var inside = Attention.Parse("(a BREAK b)").Value!;
        Assert.False(inside[1].IsIntegerWeight || inside[1].IsBreak);
    }

    [Theory]
    [InlineData("masterpiece:1.5", "masterpiece", 1.5)]
    [InlineData("a :1.2 :1.3", "a :1.2", 1.3)]
    [InlineData("a:２", "a", 2.0)]
    [InlineData("a:1e2", "a:1e2", 1.0)]
    [InlineData("a:1.2 x", "a:1.2 x", 1.0)]
    [InlineData("  b  ", "  b", 1.0)]
    public void AndWeights(string prompt, string text, double weight)
    {
        var part = Assert.Single(Multicond.Split(prompt));
        Assert.Equal(text, part.Text);
        Assert.Equal(weight, part.Weight);
    }

    [Fact]
    public void AndSplitUsesPythonWordBoundaries()
    {
        Assert.Equal(["a", " b"], Multicond.Split("a AND b").Select(p => p.Text));
        Assert.Single(Multicond.Split("ANDROID éAND a_AND"));
        Assert.Equal(["", ""], Multicond.Split("AND").Select(p => p.Text));
        Assert.Equal(["(", ")"], Multicond.Split("(AND)").Select(p => p.Text));
    }

    [Fact]
    public void ExtraNetworkTagsFollowA1111Regex()
    {
        var p = ExtraNetworks.Parse("a <lora:x:1> b, <lora:<lora:y:1>:1> <my-net:z> <lora:> \\<lora:k:1\\> <LoRA:q:2>");
        Assert.Equal("a  b, :1> <my-net:z> <lora:> \\ ", p.Prompt);
        Assert.Equal(["lora", "LoRA"], p.TypeOrder);
        Assert.Equal(["<lora", "y", "1"], p.Tags[1].Items);
        Assert.Equal("1\\", p.Tags[2].Items[^1]);
        var a = ExtraNetworks.Activate(p);
        Assert.Equal(["LoRA"], a.Skipped);
    }

    [Fact]
    public void NamedArgumentsFollowPythonSplit()
    {
        var t = ExtraNetworks.Parse("<lora:n:a=b=c:=1:te=1:te=2>").Tags[0];
        Assert.Equal(["n", "a=b=c"], t.Positional);
        Assert.Equal([new("", "1"), new KeyValuePair<string, string>("te", "2")], t.Named);
    }

    [Fact]
    public void LoraActivationUsesPythonFloatAndIntSemantics()
    {
        var a = ExtraNetworks.Activate(ExtraNetworks.Parse("<lora:a: 0.5:1_0> <lyco:b:inf:nan:7> <lora:c:١.٥:unet=1e-1:dyn=8>"));
        var loras = a.LoadedLoras;
        // lyco arguments join lora's, after every lora tag (order of first appearance of the type).
        Assert.Equal(["a", "c", "b"], loras.Select(l => l.Name));
        Assert.Equal([0.5, 1.5, double.PositiveInfinity], loras.Select(l => l.TeMultiplier));
        Assert.Equal(10.0, loras[0].UnetMultiplier);
        Assert.True(double.IsNaN(loras[2].UnetMultiplier));
        Assert.Equal(0.1, loras[1].UnetMultiplier);
        Assert.Equal(7, (int)loras[2].DynDim!.Value);
        Assert.Equal(8, (int)loras[1].DynDim!.Value);
    }

    [Fact]
    public void OneBadLoraTagUnloadsEveryLora()
    {
        var a = ExtraNetworks.Activate(ExtraNetworks.Parse("<lora:good:1> <lora:bad:4.0:1:4.0> <hypernet:h:1>"));
        Assert.Equal(["lora", "hypernet", "lora"], a.Calls.Select(c => c.Network));
        Assert.Equal(PromptErrorKind.ValueError, a.Calls[0].Error!.Kind);
        Assert.Empty(a.LoadedLoras);
        var idx = ExtraNetworks.Activate(ExtraNetworks.Parse("<lora:te=0.5>"));
        Assert.Equal(PromptErrorKind.IndexError, idx.Calls[0].Error!.Kind);
        var hyp = ExtraNetworks.Activate(ExtraNetworks.Parse("<hypernet:h:te=1>"));
        Assert.Equal(PromptErrorKind.ValueError, hyp.Calls[0].Error!.Kind);
    }

    [Theory]
    [InlineData("1_0", true, 10.0)]
    [InlineData("1__0", false, 0)]
    [InlineData("_1", false, 0)]
    [InlineData(" -Infinity ", true, double.NegativeInfinity)]
    [InlineData("1.", true, 1.0)]
    [InlineData(".", false, 0)]
    [InlineData("0x10", false, 0)]
    [InlineData("1e400", true, double.PositiveInfinity)]
    public void PythonFloat(string text, bool ok, double value)
    {
        Assert.Equal(ok, PyText.TryParseFloat(text, out double v));
        if (ok) Assert.Equal(value, v);
    }

    [Theory]
    [InlineData(1.0, "1.0")]
    [InlineData(1.4300000000000002, "1.4300000000000002")]
    [InlineData(1e16, "1e+16")]
    [InlineData(1e15, "1000000000000000.0")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(0.00001, "1e-05")]
    [InlineData(-2.5e-300, "-2.5e-300")]
    public void FloatReprIsPythons(double value, string repr) => Assert.Equal(repr, PyText.FloatRepr(value));
}
