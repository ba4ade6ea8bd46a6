namespace LoraBridge.Tokenizers.Tests;

// Expected values are CPython 3.11 results of the same calls (html.unescape, str.strip, str.lower, regex \s).
public class NormalizationTests
{
    [Theory]
    [InlineData("&amp;", "&")]
    [InlineData("&amp;amp;", "&amp;")]
    [InlineData("&ampx", "&x")]              // HTML5 no-semicolon prefix rule
    [InlineData("&notin;", "\u2209")]
    [InlineData("&notin", "\u00ACin")]         // only "not" is a no-semicolon name
    [InlineData("&notit;", "\u00ACit;")]     // longest known prefix, rest kept
    [InlineData("&#65;&#x42;&#X43", "ABC")]
    [InlineData("&#0;", "\uFFFD")]
    [InlineData("&#x80;", "\u20AC")]          // invalid charref remapped (cp1252)
    [InlineData("&#1;x", "x")]               // invalid code point dropped
    [InlineData("&#xD800;", "\uFFFD")]
    [InlineData("&#99999999999999999999;", "\uFFFD")]
    [InlineData("&#128512;", "\U0001F600")]
    [InlineData("&#x;", "&#x;")]
    [InlineData("& amp;", "& amp;")]
    [InlineData("&unknown;", "&unknown;")]
    [InlineData("a&b", "a&b")]
    public void HtmlUnescapeMatchesPython(string input, string expected) =>
        Assert.Equal(expected, PythonText.HtmlUnescape(input));

    [Theory]
    [InlineData("\u0130", "i\u0307")]        // İ lowers to two characters
    [InlineData("\u039F\u0394\u039F\u03A3", "\u03BF\u03B4\u03BF\u03C2")] // final sigma
    [InlineData("\u03A3", "\u03C3")]         // lone sigma is not final
    [InlineData("\u03A3\u039F", "\u03C3\u03BF")]
    [InlineData("\u039F\u03A3\u0301 x", "\u03BF\u03C2\u0301 x")]   // a combining mark is case-ignorable
    [InlineData("\u039F\u03A3\u0301A", "\u03BF\u03C3\u0301a")]
    [InlineData("\U00010400", "\U00010428")] // Deseret, outside the BMP
    [InlineData("\u212A", "k")]              // Kelvin sign
    [InlineData("ABC def", "abc def")]
    public void LowerMatchesPython(string input, string expected) =>
        Assert.Equal(expected, PythonText.Lower(input));

    [Fact]
    public void WhiteSpaceFollowsRegexModuleAndStripFollowsIsSpace()
    {
        // regex's \s excludes 0x1C-0x1F, str.strip() removes them.
        Assert.Equal("a\u001Cb c", PythonText.CollapseWhiteSpace("a\u001Cb\u2028\u00A0 \tc"));
        Assert.Equal("x", LoraBridge.Prompting.PyText.Strip("\u001C\u0085 x\u3000\u001F"));
        Assert.Equal("a b", ClipTokenizer.Normalize("  A\u0085\u2003B &nbsp;"));
        Assert.Equal("\u200b\u001cx", ClipTokenizer.Normalize("\u200B\u001Cx")); // U+200B is not White_Space
    }

    [Fact]
    public void PreTokenizerFollowsClipRegex()
    {
        static string[] Split(string s) => ClipTokenizer.PreTokenize(s).Select(t => s.Substring(t.Start, t.Length)).ToArray();
        Assert.Equal(["y", "'", "all", "'d", "'ve"], Split("y'all'd've"));
        Assert.Equal(["it", "'s", "!'", "s"], Split("it's !'s"));
        Assert.Equal(["1", "2", "3", "abc"], Split("123abc"));
        Assert.Equal(["a", "<|endoftext|>", "!<|", "startoftext", "|>"], Split("a<|endoftext|>!<|startoftext|>"));
        Assert.Equal(["'\u017F"], Split("'\u017F"));                 // IGNORECASE: long s folds to s
        Assert.Equal(["\U0001F600\U0001F601", "x"], Split("\U0001F600\U0001F601x"));
    }

    [SharedFact]
    public void SpecialTokenTextBecomesSpecialIds()
    {
        var clip = ClipData.Clip;
        Assert.Equal([clip.BosId, 320, clip.EosId], clip.Encode("<|startoftext|>a <|ENDOFTEXT|>"));
    }
}
