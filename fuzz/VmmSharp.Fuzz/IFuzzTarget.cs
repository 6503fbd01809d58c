namespace VmmSharp.Fuzz;

/// <summary>
/// One fuzz target: a piece of VmmSharp fed with bytes the fuzzer chose. A crash is any exception that escapes
/// <see cref="Run"/>: the target catches the exceptions its code documents for bad input and lets every other one
/// (and every <see cref="FuzzCheckException"/> of a broken invariant) through. A run that does not end is a hang.
/// </summary>
/// <remarks>
/// Adding a target takes one class that implements this interface (it is found by reflection; it needs a
/// parameterless constructor) and its seed corpus in <c>fuzz/corpus/NAME/</c>, written by <c>seeds</c> from
/// <see cref="Seeds"/>. docs/FUZZING.md says more.
/// </remarks>
internal interface IFuzzTarget
{
    /// <summary>The target's name on the command line and its corpus folder's name, lower-case with dashes.</summary>
    string Name { get; }

    /// <summary>Feeds <paramref name="input"/> to the code under test; returns normally unless something is wrong.</summary>
    void Run(ReadOnlySpan<byte> input);

    /// <summary>The seed corpus: small, valid (or nearly valid) inputs that reach the interesting paths, by file name.</summary>
    IEnumerable<(string Name, byte[] Data)> Seeds();
}
