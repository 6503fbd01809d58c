namespace VmmSharp.State;

/// <summary>
/// A component (a device, a transport, a queue) whose state goes into a snapshot and comes back from one.
/// </summary>
/// <remarks>
/// The owner of the component names its section in the snapshot and stores <see cref="StateVersion"/> with it;
/// <see cref="RestoreState"/> gets that version back, so a component can read older layouts of its own state.
/// Save and restore are called only while the VM is paused: no vCPU and no device thread touches the component.
/// </remarks>
public interface IStateful
{
    /// <summary>The version of the layout <see cref="SaveState"/> writes; raise it when the layout changes.</summary>
    ushort StateVersion { get; }

    /// <summary>Writes the component's state.</summary>
    /// <param name="writer">Where the state goes.</param>
    void SaveState(StateWriter writer);

    /// <summary>Replaces the component's state with the one <see cref="SaveState"/> wrote.</summary>
    /// <param name="reader">The state, positioned at its start.</param>
    /// <param name="version">The <see cref="StateVersion"/> the state was written with.</param>
    /// <exception cref="StateFormatException">The state is truncated, of an unknown version, or holds a value
    /// the component cannot take; the component is then left in a state that is safe to dispose.</exception>
    void RestoreState(ref StateReader reader, ushort version);
}
