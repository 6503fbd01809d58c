namespace VmmSharp.Guests;

/// <summary>The CPU mode a <see cref="TinyGuest"/> starts in.</summary>
public enum GuestMode
{
    /// <summary>16-bit real mode, CS = 0.</summary>
    Real16,

    /// <summary>32-bit protected mode, flat segments, paging off, CPL0.</summary>
    Protected32,

    /// <summary>64-bit long mode, identity-mapped, CPL0.</summary>
    Long64,

    /// <summary>64-bit long mode at CPL3 with IOPL 3, so the code may use IN and OUT. Runs natively even on PVM.</summary>
    User64,
}
